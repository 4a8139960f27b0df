//! The one seam between the daemon and the database engines. A URL's scheme picks the
//! engine ([`Engine::of`]); a [`Connector`] per server hands out [`Session`]s, and a
//! session answers in plain data: a shard's [`Catalog`] (its inventory and how it treats an
//! out-of-range value), the `MAX()` of columns ([`Session::dive`]), a ticket server's
//! [`Reading`], what a plan needs ([`Session::plan_reads`]). An [`Engine`] writes a plan's
//! statements in its own words ([`Engine::widen`]), and `headroom bump` reads and raises
//! counters through a [`Writer`]. Each engine lives whole in its own module ([`crate::mysql`],
//! [`crate::postgres`]); these enums over them are all the rest of the daemon sees,
//! so that a second engine stands beside the first by adding a variant here and a module
//! of its own (see docs/design.md).

pub mod kind;

use std::collections::HashMap;
use std::time::Duration;

use url::Url;

use crate::bump::{Action, Counter, ServerError};
use crate::db::DbError;
use crate::headroom::IntType;
pub use crate::inventory::Catalog;
use crate::inventory::{ColumnId, InventoryError, SchemaFilter};
use crate::plan::found::{Definition, ForeignKey, Found, Widening, Written};
use crate::sources::{Reading, SourceError};
use crate::{mysql, postgres};
pub use kind::Engine;

impl Engine {
    /// A widening written out for this engine, its table on `host`:`port`: the statement
    /// and the online schema change commands (MySQL) or steps (PostgreSQL). Pure.
    pub fn widen(self, w: &Widening, host: &str, port: u16, definition: &Definition) -> Written {
        match self {
            Engine::Mysql => mysql::plan::statements::widen(w, host, port, definition),
            Engine::Postgres => postgres::plan::statements::widen(w, definition),
        }
    }

    /// The statement that drops `fk` before its columns change type; `None` where the
    /// engine keeps a key through the change (PostgreSQL: see docs/postgres.md). Pure.
    pub fn drop_foreign_key(self, fk: &ForeignKey) -> Option<String> {
        match self {
            Engine::Mysql => Some(mysql::plan::statements::drop_foreign_key(fk)),
            Engine::Postgres => None,
        }
    }

    /// The statement that adds `fk` again, whole, after its columns changed type; `None`
    /// where the engine never dropped it. Pure.
    pub fn add_foreign_key(self, fk: &ForeignKey) -> Option<String> {
        match self {
            Engine::Mysql => Some(mysql::plan::statements::add_foreign_key(fk)),
            Engine::Postgres => None,
        }
    }

    /// An integer type as the engine names it: `BIGINT UNSIGNED` on MySQL, `bigint` on
    /// PostgreSQL.
    pub fn type_name(self, t: IntType) -> String {
        match self {
            Engine::Mysql => t.display_name(),
            Engine::Postgres => postgres::plan::statements::type_name(t).to_string(),
        }
    }

    /// The server's port when a URL names none.
    pub const fn default_port(self) -> u16 {
        match self {
            Engine::Mysql => 3306,
            Engine::Postgres => 5432,
        }
    }
}

/// Connections to one server of any engine. Building it never touches the network.
pub struct Connector {
    inner: Connectors,
}

enum Connectors {
    Mysql(Box<mysql::Connector>),
    /// A server and the databases it watches.
    Postgres(postgres::shard::Server),
}

/// A session on a server: [`Session::release`] keeps its connection for the next use;
/// dropping it closes the connection instead (after a failed or abandoned step).
pub struct Session<'a> {
    inner: Sessions<'a>,
}

enum Sessions<'a> {
    Mysql(mysql::Session<'a>),
    /// A session on the server's home database, and the server for the others.
    Postgres(&'a postgres::shard::Server, postgres::Session<'a>),
}

/// A session that may write, for `headroom bump` only (every other session is read-only),
/// and what bump asks of it: the counters, and one counter raised.
///
/// Bump meets the engine one server at a time, each through its own URL, rather than
/// handing the whole run to the engine: what a run does around the sessions (the refusal,
/// every server read before any is written, the report, the exit codes) is the same for
/// every engine and stays in [`crate::bump`], and a fleet whose ticket servers and shards
/// speak different engines needs nothing more.
pub struct Writer {
    inner: Writers,
}

enum Writers {
    Mysql(mysql::bump::Writer),
    Postgres(postgres::bump::Writer),
}

impl Writer {
    /// Connects to `url` (it holds no password) with `password`, each step bounded by
    /// `timeout`.
    pub async fn connect(
        url: &Url,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<Writer, DbError> {
        let inner = match Engine::of(url) {
            Some(Engine::Mysql) => {
                Writers::Mysql(mysql::bump::Writer::connect(url, password, timeout).await?)
            }
            Some(Engine::Postgres) => {
                Writers::Postgres(postgres::bump::Writer::connect(url, password, timeout).await?)
            }
            None => return Err(unknown_scheme(url)),
        };
        Ok(Writer { inner })
    }

    /// The counter of the ticket table `database`.`table`, held by `server` (a name for
    /// the report); `None` when the table is not found, has no auto-increment integer
    /// column, or is not visible.
    pub async fn ticket_counter(
        &mut self,
        server: String,
        database: &str,
        table: &str,
        timeout: Duration,
    ) -> Result<Option<Counter>, DbError> {
        match &mut self.inner {
            Writers::Mysql(w) => w.ticket_counter(server, database, table, timeout).await,
            // A ticket source reads MySQL servers only (the configuration says so).
            Writers::Postgres(_) => Ok(None),
        }
    }

    /// The counter of a sequence source's sequence `schema.name` (PostgreSQL), held by
    /// `server`; `None` when it is not found, not readable, or counts down.
    pub async fn sequence_counter(
        &mut self,
        server: String,
        schema: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<Counter>, DbError> {
        match &mut self.inner {
            // A sequence source reads PostgreSQL servers only (the configuration says so).
            Writers::Mysql(_) => Ok(None),
            Writers::Postgres(w) => w.sequence_counter(server, schema, name, timeout).await,
        }
    }

    /// Every auto-increment counter of the schemas `filter` names, held by `server`.
    pub async fn counters(
        &mut self,
        server: &str,
        filter: &SchemaFilter,
        timeout: Duration,
    ) -> Result<Vec<Counter>, InventoryError> {
        match &mut self.inner {
            Writers::Mysql(w) => w.counters(server, filter, timeout).await,
            Writers::Postgres(w) => w.counters(server, filter, timeout).await,
        }
    }

    /// Raises `counter` above `above` unless another session did since it was read, with
    /// no other session able to move it meanwhile: the value it stood at and what was done.
    pub async fn raise(
        &mut self,
        counter: &Counter,
        above: u64,
        timeout: Duration,
    ) -> Result<(i128, Action), ServerError> {
        match &mut self.inner {
            Writers::Mysql(w) => w.raise(counter, above, timeout).await,
            Writers::Postgres(w) => w.raise(counter, above, timeout).await,
        }
    }

    /// Closes the session cleanly, within `timeout`.
    pub async fn close(self, timeout: Duration) {
        match self.inner {
            Writers::Mysql(w) => w.close(timeout).await,
            Writers::Postgres(w) => w.close(timeout).await,
        }
    }
}

/// The error for what an engine does not do yet.
fn not_yet(engine: Engine, what: &str) -> DbError {
    DbError::Decode {
        what: what.to_string(),
        message: format!("not available on {} servers yet", engine.name()),
    }
}

/// The error for a URL whose scheme no engine speaks (the configuration refuses such a
/// URL; this guards one built otherwise).
fn unknown_scheme(url: &Url) -> DbError {
    DbError::Decode {
        what: "reading the server's URL".to_string(),
        message: format!("scheme {:?} is none of {}", url.scheme(), Engine::SCHEMES),
    }
}

impl Connector {
    /// Prepares connecting to `url` (it holds no password) with `password`, each step
    /// bounded by `query_timeout`.
    pub fn new(
        url: &Url,
        password: Option<&str>,
        query_timeout: Duration,
    ) -> Result<Connector, DbError> {
        Connector::watching(url, password, query_timeout, None)
    }

    /// As [`Connector::new`], for a shard whose `databases` patterns narrow the databases
    /// it watches (PostgreSQL; `None`: every database).
    pub fn watching(
        url: &Url,
        password: Option<&str>,
        query_timeout: Duration,
        databases: Option<&[String]>,
    ) -> Result<Connector, DbError> {
        let inner = match Engine::of(url) {
            Some(Engine::Mysql) => Connectors::Mysql(Box::new(mysql::Connector::new(
                url,
                password,
                query_timeout,
            )?)),
            Some(Engine::Postgres) => Connectors::Postgres(postgres::shard::Server::new(
                url,
                password,
                query_timeout,
                databases,
            )?),
            None => return Err(unknown_scheme(url)),
        };
        Ok(Connector { inner })
    }

    /// A session: the kept connection if it still answers, else a new one.
    pub async fn acquire(&self) -> Result<Session<'_>, DbError> {
        let inner = match &self.inner {
            Connectors::Mysql(c) => Sessions::Mysql(c.acquire().await?),
            Connectors::Postgres(server) => Sessions::Postgres(server, server.acquire().await?),
        };
        Ok(Session { inner })
    }

    /// Closes the kept connection cleanly, if any, within `grace`.
    pub async fn close(&self, grace: Duration) {
        match &self.inner {
            Connectors::Mysql(c) => c.close(grace).await,
            Connectors::Postgres(server) => server.close(grace).await,
        }
    }
}

impl Session<'_> {
    /// The shard's catalog: the schemas `filter` names, each query under `timeout`.
    pub async fn catalog(
        &mut self,
        filter: &SchemaFilter,
        timeout: Duration,
    ) -> Result<Catalog, InventoryError> {
        match &mut self.inner {
            Sessions::Mysql(s) => {
                let inventory = s.catalog(filter, timeout).await?;
                let sql_mode = mysql::sql_mode::read(s, timeout).await?;
                let strict = mysql::sql_mode::is_strict(&sql_mode);
                Ok(Catalog::single(inventory, Some(sql_mode), strict))
            }
            Sessions::Postgres(server, home) => server.catalog(home, filter, timeout).await,
        }
    }

    /// `MAX()` of every column of `columns` (each leads an index); an empty table gives
    /// `None`, a column gone since the catalog was read is left out.
    pub async fn dive(
        &mut self,
        columns: &[ColumnId],
        timeout: Duration,
    ) -> Result<HashMap<ColumnId, Option<i128>>, DbError> {
        match &mut self.inner {
            Sessions::Mysql(s) => mysql::dives::read(s, columns, timeout).await,
            Sessions::Postgres(server, home) => server.dive(home, columns, timeout).await,
        }
    }

    /// A ticket server's reading: its `table` in `database`.
    pub async fn ticket(
        &mut self,
        database: &str,
        table: &str,
        timeout: Duration,
    ) -> Result<Reading, SourceError> {
        match &mut self.inner {
            Sessions::Mysql(s) => mysql::ticket::read(s, database, table, timeout).await,
            Sessions::Postgres(..) => {
                Err(not_yet(Engine::Postgres, "reading a ticket server").into())
            }
        }
    }

    /// A sequence source's reading: the sequence `schema.name` of the session's database
    /// (`database`, for messages), what it has handed out counted in its own direction.
    pub async fn sequence(
        &mut self,
        database: &str,
        schema: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Reading, SourceError> {
        match &mut self.inner {
            Sessions::Mysql(_) => Err(SourceError::NoSequence {
                database: database.to_string(),
                schema: schema.to_string(),
                name: name.to_string(),
            }),
            Sessions::Postgres(_, home) => {
                postgres::source::read(home, database, schema, name, timeout).await
            }
        }
    }

    /// What a plan needs from this shard, named `shard`, for its `wanted` widenings, read
    /// into `found`: each column's definition and table size, the foreign keys that hold
    /// them, and the widened tables to write no statement for (see [`Found`]).
    pub async fn plan_reads(
        &mut self,
        shard: &str,
        wanted: &[&Widening],
        timeout: Duration,
        found: &mut Found,
    ) -> Result<(), DbError> {
        match &mut self.inner {
            Sessions::Mysql(s) => mysql::plan::read(s, shard, wanted, timeout, found).await,
            Sessions::Postgres(server, home) => {
                postgres::plan::read(server, home, shard, wanted, timeout, found).await
            }
        }
    }

    /// Keeps the connection for the next use (after every step succeeded).
    pub fn release(self) {
        match self.inner {
            Sessions::Mysql(s) => s.release(),
            Sessions::Postgres(_, home) => home.release(),
        }
    }
}
