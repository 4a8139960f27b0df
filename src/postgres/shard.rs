//! A PostgreSQL shard: one server, every database it watches. A session is bound to one
//! database, so the shard keeps a connector per watched database besides the one its URL
//! names (the home database, through which the databases and their wraparound ages are
//! listed), each with its own kept connection. A poll holds at most two connections at
//! once: the home session and the database being read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::catalog::{self, ColumnRef, TableKind};
use super::connect::{Connector, Session};
use super::databases::{self, Patterns};
use super::{dives, inventory, wraparound};
use crate::db::{DbError, overlapped};
use crate::inventory::{Catalog, ColumnId, DatabaseAges, Inventory, InventoryError, SchemaFilter};

/// How many of a database's oldest tables its wraparound ages name.
pub const OLDEST_TABLES: u32 = 5;

/// Connections to one PostgreSQL server and the databases a shard watches on it.
pub struct Server {
    home: Arc<Connector>,
    patterns: Patterns,
    /// Whether `databases` was configured (else every database is watched).
    narrowed: bool,
    /// Connectors of the other databases, made when first read.
    others: Mutex<HashMap<String, Arc<Connector>>>,
    /// Per database, the partitioned tables its last catalog read listed: their dives read
    /// every partition, an ordinary table's only its own rows.
    partitioned: Mutex<HashMap<String, HashSet<(String, String)>>>,
}

impl Server {
    /// Prepares connecting to `url` (no password in it) with `password`; `databases` are
    /// the configured patterns (`None`: every database). Never touches the network.
    pub fn new(
        url: &url::Url,
        password: Option<&str>,
        timeout: Duration,
        databases: Option<&[String]>,
    ) -> Result<Server, DbError> {
        let patterns = match databases {
            Some(list) => Patterns::new(list).map_err(|message| DbError::Decode {
                what: "reading the shard's databases".to_string(),
                message,
            })?,
            None => Patterns::all(),
        };
        Ok(Server {
            home: Arc::new(Connector::new(url, password, timeout)?),
            patterns,
            narrowed: databases.is_some(),
            others: Mutex::new(HashMap::new()),
            partitioned: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `name` is the home database (the URL's), whose session the caller holds.
    pub fn is_home(&self, name: &str) -> bool {
        self.home.database() == Some(name)
    }

    /// The connector of database `name`: the home one when it is that database.
    pub fn connector(&self, name: &str) -> Arc<Connector> {
        if self.home.database() == Some(name) {
            return Arc::clone(&self.home);
        }
        let mut others = self.others.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            others
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(self.home.for_database(name))),
        )
    }

    /// A session on the home database.
    pub async fn acquire(&self) -> Result<Session<'_>, DbError> {
        self.home.acquire().await
    }

    /// Closes every kept connection, each within `grace`.
    pub async fn close(&self, grace: Duration) {
        self.home.close(grace).await;
        let others: Vec<Arc<Connector>> = self
            .others
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for c in others {
            c.close(grace).await;
        }
    }

    /// The shard's catalog through `home` (a session on the home database): the watched
    /// databases, each database's inventory (the schemas `filter` admits), and every
    /// database's wraparound ages, with the oldest tables of the watched ones.
    pub async fn catalog(
        &self,
        home: &mut Session<'_>,
        filter: &SchemaFilter,
        timeout: Duration,
    ) -> Result<Catalog, InventoryError> {
        let watched = databases::read(home, &self.patterns, timeout).await?;
        if !watched.unmatched.is_empty() {
            return Err(InventoryError::DatabasesNotFound(watched.unmatched));
        }
        let refused: Vec<String> = watched
            .databases
            .iter()
            .filter(|d| !d.can_connect)
            .map(|d| d.name.clone())
            .collect();
        if self.narrowed && !refused.is_empty() {
            return Err(InventoryError::DatabasesRefused(refused));
        }
        // Watched by default but closed to the user: said, never silently left out.
        let unread = refused
            .iter()
            .map(|d| {
                format!(
                    "database {d}: the monitoring user may not connect to it: GRANT CONNECT ON DATABASE to it, or leave it out with databases"
                )
            })
            .collect();
        let mut ages = wraparound::database_ages(home, timeout).await?;
        let mut oldest: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
        let mut inventories = Vec::new();
        let mut partitioned = HashMap::new();
        for listed in watched.databases.iter().filter(|d| d.can_connect) {
            let (inventory, tables) = if self.home.database() == Some(listed.name.as_str()) {
                read_database(home, filter, timeout).await?
            } else {
                let connector = self.connector(&listed.name);
                let mut session = connector.acquire().await?;
                let read = read_database(&mut session, filter, timeout).await?;
                session.release();
                read
            };
            let (inventory, tables_partitioned) = inventory;
            inventories.push(inventory);
            partitioned.insert(listed.name.clone(), tables_partitioned);
            oldest.insert(listed.name.clone(), tables);
        }
        *self.partitioned.lock().unwrap_or_else(|e| e.into_inner()) = partitioned;
        ages.sort_by(|a, b| a.name.cmp(&b.name));
        let ages = ages
            .into_iter()
            .map(|a| DatabaseAges {
                oldest_tables: oldest.remove(&a.name).unwrap_or_default(),
                database: a.name,
                xid_age: clamp(a.xid_age),
                multixact_age: clamp(a.multixact_age),
            })
            .collect();
        Ok(Catalog {
            inventories,
            mode: None,
            // A value out of range is always refused: PostgreSQL has no other mode.
            strict: true,
            ages,
            unread,
        })
    }

    /// `MAX()` of every column of `columns`, each read in its own database, `home` for
    /// the home database's.
    pub async fn dive(
        &self,
        home: &mut Session<'_>,
        columns: &[ColumnId],
        timeout: Duration,
    ) -> Result<HashMap<ColumnId, Option<i128>>, DbError> {
        // Each database's dives with the rows they read, decided before any is read.
        let mut by_database: BTreeMap<&str, Vec<(ColumnRef, dives::Rows, &ColumnId)>> =
            BTreeMap::new();
        {
            let partitioned = self.partitioned.lock().unwrap_or_else(|e| e.into_inner());
            for id in columns {
                let Some(database) = id.database() else {
                    continue;
                };
                let table = (id.schema.clone(), id.table.clone());
                let rows = if partitioned
                    .get(database)
                    .is_some_and(|p| p.contains(&table))
                {
                    dives::Rows::Partitions
                } else {
                    dives::Rows::Own
                };
                let r = ColumnRef::new(&id.schema, &id.table, &id.column);
                by_database.entry(database).or_default().push((r, rows, id));
            }
        }
        let mut out = HashMap::with_capacity(columns.len());
        for (database, wanted) in by_database {
            let refs: Vec<(ColumnRef, dives::Rows)> = wanted
                .iter()
                .map(|(r, rows, _)| (r.clone(), *rows))
                .collect();
            let values = if self.home.database() == Some(database) {
                dives::read(home, &refs, timeout).await?
            } else {
                let connector = self.connector(database);
                let mut session = connector.acquire().await?;
                let values = dives::read(&mut session, &refs, timeout).await?;
                session.release();
                values
            };
            for (r, _, id) in wanted {
                if let Some(v) = values.get(&r) {
                    out.insert(id.clone(), *v);
                }
            }
        }
        Ok(out)
    }
}

/// An age as the gauges hold it (ages never pass 2^31; a larger number is kept whole up
/// to `i64::MAX`).
fn clamp(age: i128) -> i64 {
    i64::try_from(age).unwrap_or(i64::MAX)
}

/// One database's inventory with its partitioned tables, and its oldest tables
/// (`schema.table` and age). The catalog becomes the inventory while the server finds the
/// oldest tables.
async fn read_database(
    session: &mut Session<'_>,
    filter: &SchemaFilter,
    timeout: Duration,
) -> Result<((Inventory, HashSet<(String, String)>), Vec<(String, i64)>), DbError> {
    let database = catalog::read(session, filter, timeout).await?;
    let (oldest, inventory) = overlapped(
        wraparound::oldest_tables(session, OLDEST_TABLES, timeout),
        move || {
            // Its partitioned tables, whose dives read every partition (see `dive`).
            let partitioned: HashSet<(String, String)> = database
                .columns
                .iter()
                .filter(|c| c.table_kind == TableKind::Partitioned)
                .map(|c| (c.id.schema.clone(), c.id.table.clone()))
                .collect();
            Ok((inventory::inventory(&database), partitioned))
        },
    )
    .await?;
    let tables = oldest
        .into_iter()
        .map(|t| {
            let name = match t.owner {
                Some((schema, table)) => format!("{schema}.{table}"),
                None => format!("{}.{}", t.schema, t.name),
            };
            (name, clamp(t.xid_age))
        })
        .collect();
    Ok((inventory, tables))
}
