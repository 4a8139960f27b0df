//! A randomised oracle for PostgreSQL shards. A seeded generator builds a random world on a
//! throwaway cluster: one or two databases, hostile names (quotes, `{table}`, `;`, `--`,
//! `%`, `$1`, a bell, non-ASCII), the same tables in both databases now and then; integer
//! columns fed by `serial` (sometimes altered to another type after), identities ALWAYS
//! and BY DEFAULT, `DEFAULT nextval` of a sequence of their own (perhaps `OWNED BY`, in
//! another schema, unlogged) or shared, `OWNED BY` alone; sequences of every type with
//! random bounds, starts and increments up and down, some cycling, driven by `nextval`,
//! `setval(…, true|false)`, `RESTART` and rows inserted, or never used; declared foreign
//! keys to plain keys, to sequence-fed ones, chains through one-to-one extensions, two-column
//! keys with and without indexes that can answer `MAX()`; partitioned and inherited tables;
//! columns that must not be listed (of other types, dropped, views, a materialized view);
//! and a monitoring role that is not a superuser, holding the documented grants less a few
//! sequences (revoked, or USAGE alone) and tables. A real headroom polls it once, and each
//! row of `/api/columns` and the shard's `unresolved` are compared with what the test
//! computes on its own: the catalog, each sequence's own row and `MAX()`es read as the
//! superuser, and the arithmetic of docs/postgres.md written here again (never headroom's
//! code). Every page of those rows must answer, and every `MAX()` the monitoring role sent
//! (from the server's log) must be answered by an index: its plan, with sequential scans
//! off, has none left.
//!
//! The seeds are printed; `HEADROOM_ORACLE_SEED=<n>` runs that one instead (`random`: one
//! from the clock) and `HEADROOM_ORACLE_TABLES=<n>` changes the number of tables (40).
//!
//! What the oracle holds a column to:
//!
//! - fed by a sequence: `current` is what it has handed out, counted in its direction (the
//!   last value if `is_called`, else one step before the value it hands out next, negated
//!   for a descending sequence); `max` the lower of the column type's limit in that
//!   direction (its maximum going up, its maximum + 1 going down) and the sequence's
//!   (`MAXVALUE`, or `-MINVALUE` going down), never below 0; `limited_by` the sequence when
//!   its limit is strictly the lower; `type_mismatch` when the type's is. Unresolved, with
//!   the grant, when the role may not read the sequence, or has USAGE alone and the
//!   sequence handed out nothing since it was set;
//! - the child of a declared foreign key: its parent's `current` when the parent is
//!   measured and known, else `MAX()` of the parent where it leads a B-tree index the role
//!   may read, else `MAX()` of the child where it does (of a table's own rows, a
//!   partitioned table's all; 0 for none), else unresolved; `max` its type's, one more
//!   when the sequence at the root of its chain descends; `type_mismatch` when its type is
//!   narrower than its parent's;
//! - `status` by the default ratio thresholds on exact integers (warning at 70 %, critical
//!   at 85 %, exhausted above `max`; a negative `current` counts as 0).

use std::collections::{BTreeMap, BTreeSet};

use headroom_sandbox::Postgres;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection, Row};

use crate::harness::{TestApp, settings, spawn_app};

/// The seeds of a plain `cargo test`: worlds that found bugs before they were fixed (1: a
/// column of max 0 panicked the sort of /api/columns; 49: the heirs of an inherited table
/// scanned by a dive, the child of an unreadable sequence left unresolved, the children of
/// descending sequences one short).
const DEFAULT_SEEDS: [u64; 2] = [1, 49];
const DEFAULT_TABLES: usize = 40;
const SUPERUSER: &str = "postgres";

/// SplitMix64: small, seedable, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// `lo..=hi`.
    fn between(&mut self, lo: i128, hi: i128) -> i128 {
        assert!(lo <= hi, "between({lo}, {hi})");
        let span = (hi - lo + 1) as u128;
        let wide = (u128::from(self.next()) << 64) | u128::from(self.next());
        lo + (wide % span) as i128
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The seeds to run: `HEADROOM_ORACLE_SEED`, or [`DEFAULT_SEEDS`].
fn seeds() -> Vec<u64> {
    match std::env::var("HEADROOM_ORACLE_SEED") {
        Ok(s) if s.trim() == "random" => vec![
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1),
        ],
        Ok(s) => vec![
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("HEADROOM_ORACLE_SEED={s:?}: a number or `random`")),
        ],
        Err(_) => DEFAULT_SEEDS.to_vec(),
    }
}

fn table_count() -> usize {
    std::env::var("HEADROOM_ORACLE_TABLES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_TABLES)
}

/// PostgreSQL's integer types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Small,
    Int,
    Big,
}

impl Ty {
    const ALL: [Ty; 3] = [Ty::Small, Ty::Int, Ty::Big];

    /// As `format_type` writes it.
    fn sql(self) -> &'static str {
        match self {
            Ty::Small => "smallint",
            Ty::Int => "integer",
            Ty::Big => "bigint",
        }
    }

    fn of(format_type: &str) -> Ty {
        Ty::ALL
            .into_iter()
            .find(|t| t.sql() == format_type)
            .unwrap_or_else(|| panic!("not an integer type: {format_type:?}"))
    }

    fn max(self) -> i128 {
        match self {
            Ty::Small => 32_767,
            Ty::Int => 2_147_483_647,
            Ty::Big => 9_223_372_036_854_775_807,
        }
    }

    fn min(self) -> i128 {
        -self.max() - 1
    }

    /// How far from zero a value may go in one direction.
    fn limit(self, descending: bool) -> i128 {
        if descending {
            self.max() + 1
        } else {
            self.max()
        }
    }
}

/// `name` quoted as an identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as a string literal (`standard_conforming_strings` is on).
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn ceil_div(a: i128, b: i128) -> i128 {
    -((-a).div_euclid(b))
}

/// Names that break careless quoting, templating, terminals and URLs.
const HOSTILE: &[&str] = &[
    "we\"ird ",
    "{table} ",
    "t#\"{column} ",
    "ñandú ",
    "Upper ",
    "sp ace ",
    "x'y ",
    "a.b ",
    "--c ",
    "semi; ",
    "bell\u{7} ",
    "🦀 ",
    "per%cent ",
    "back\\slash ",
    "$1 ",
];

/// The name of the `n`th thing of its `kind` in the world of `seed`: `{kind}{n}`, after a
/// hostile prefix one time in three; always the same for the same `kind` and `n`, so that
/// twin tables in two databases have the same names.
fn name(seed: u64, kind: &str, n: usize) -> String {
    let mut h = Rng(seed ^ (n as u64).wrapping_mul(0x0000_0100_0000_01B3));
    for b in kind.bytes() {
        h.0 = h.0.rotate_left(7) ^ u64::from(b);
    }
    if h.chance(33) {
        format!("{}{kind}{n}", h.pick(HOSTILE))
    } else {
        format!("{kind}{n}")
    }
}

/// What the monitoring role may do with a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// SELECT, as `GRANT SELECT ON ALL SEQUENCES` gives.
    Select,
    /// Nothing.
    Revoked,
    /// USAGE without SELECT.
    UsageOnly,
}

/// A sequence as the test made it, and where it drove it.
#[derive(Debug, Clone)]
struct Seq {
    db: usize,
    /// An expression naming it as a `regclass`.
    regclass: String,
    /// What `RESTART` follows (`ALTER SEQUENCE …`, or `ALTER TABLE … ALTER COLUMN …` for an
    /// identity); `None` for a serial's, whose name the server picks.
    alter: Option<String>,
    ty: Ty,
    start: i128,
    inc: i128,
    min: i128,
    max: i128,
    cycle: bool,
    last: i128,
    called: bool,
    access: Access,
    /// The type of the first column it feeds (targets are picked near its limit).
    column: Option<Ty>,
    /// How it was made and driven, for a failure's message.
    story: Vec<String>,
}

impl Seq {
    /// A `serial`'s sequence (`AS ty`, PostgreSQL's defaults), named by its column.
    fn serial(db: usize, table: &str, column: &str, ty: Ty, kw: &str) -> Seq {
        Seq {
            db,
            regclass: serial_sequence(table, column),
            alter: None,
            ty,
            start: 1,
            inc: 1,
            min: 1,
            max: ty.max(),
            cycle: false,
            last: 1,
            called: false,
            access: Access::Select,
            column: Some(ty),
            story: vec![format!("{kw} {table}.{}", ident(column))],
        }
    }

    fn descending(&self) -> bool {
        self.inc < 0
    }

    /// Its own limit, counted in its direction.
    fn limit(&self) -> i128 {
        if self.descending() {
            -self.min
        } else {
            self.max
        }
    }

    /// What `nextval` returns, as PostgreSQL decides it; `None` where it would fail.
    fn nextval(&mut self) -> Option<i128> {
        let value = if !self.called {
            self.last
        } else {
            let next = self.last + self.inc;
            if (self.min..=self.max).contains(&next) {
                next
            } else if !self.cycle {
                return None;
            } else if self.descending() {
                self.max
            } else {
                self.min
            }
        };
        self.last = value;
        self.called = true;
        Some(value)
    }
}

/// The sequence of a serial or identity column of `table` (quoted), as a `regclass`.
fn serial_sequence(table: &str, column: &str) -> String {
    format!(
        "pg_get_serial_sequence({}, {})::regclass",
        lit(table),
        lit(column)
    )
}

/// Options for a new sequence of type `ty` (what follows `CREATE SEQUENCE x AS ty`, or
/// goes in an identity's parentheses): PostgreSQL's defaults or random ones, with the
/// sequence they make.
fn random_sequence(rng: &mut Rng, db: usize, ty: Ty) -> (String, Seq) {
    let step = match rng.below(10) {
        0..=5 => 1,
        6..=8 => rng.between(2, 10),
        _ => rng.between(11, 1000),
    };
    let descending = rng.chance(25);
    let inc = if descending { -step } else { step };
    let cycle = rng.chance(20);
    let explicit = rng.chance(70);
    let (min, max, start) = if !explicit {
        if descending {
            (ty.min(), -1, -1)
        } else {
            (1, ty.max(), 1)
        }
    } else {
        let (min, max) = random_bounds(rng, ty, descending);
        let start = if rng.chance(50) {
            if descending { max } else { min }
        } else {
            rng.between(min, max)
        };
        (min, max, start)
    };
    let mut options = Vec::new();
    if explicit || inc != 1 {
        options.push(format!("INCREMENT BY {inc}"));
    }
    if explicit {
        options.push(format!("MINVALUE {min} MAXVALUE {max} START WITH {start}"));
        options.push(if cycle { "CYCLE" } else { "NO CYCLE" }.to_string());
    } else if cycle {
        options.push("CYCLE".to_string());
    }
    let seq = Seq {
        db,
        regclass: String::new(),
        alter: None,
        ty,
        start,
        inc,
        min,
        max,
        cycle,
        last: start,
        called: false,
        access: Access::Select,
        column: None,
        story: Vec::new(),
    };
    (options.join(" "), seq)
}

/// `MINVALUE` and `MAXVALUE` of a sequence of type `ty`: the type's end where it counts
/// towards, a round limit or anywhere; rarely every value on the other side of zero from
/// where it counts. A bigint's far end is kept off where one step before a start would not
/// fit the JSON's 64-bit integers.
fn random_bounds(rng: &mut Rng, ty: Ty, descending: bool) -> (i128, i128) {
    let (far_min, far_max) = if ty == Ty::Big {
        (ty.min() + 2_000, ty.max() - 2_000)
    } else {
        (ty.min(), ty.max())
    };
    let toward = |rng: &mut Rng, top: i128| -> i128 {
        let round: Vec<i128> = [
            100,
            1_000,
            32_767,
            65_535,
            100_000,
            2_147_483_647,
            4_294_967_295,
            1_000_000_000_000,
        ]
        .into_iter()
        .filter(|l| *l <= top)
        .collect();
        match rng.below(10) {
            0..=3 => top,
            4..=6 => *rng.pick(&round),
            _ => rng.between(2, top),
        }
    };
    let odd = rng.chance(5);
    match (descending, odd) {
        (false, false) => {
            let max = toward(rng, ty.max());
            let min = match rng.below(10) {
                0..=5 => 1,
                6..=8 => rng.between(-1000, 1000),
                _ => rng.between(far_min, 0),
            };
            (min.min(max - 1), max)
        }
        (true, false) => {
            let min = -toward(rng, ty.max() + 1);
            let max = match rng.below(10) {
                0..=5 => -1,
                6..=8 => rng.between(-1000, 1000),
                _ => rng.between(0, far_max),
            };
            (min, max.max(min + 1))
        }
        (false, true) => {
            let max = -rng.between(1, 1000);
            ((max - rng.between(1, 100_000)).max(far_min), max)
        }
        (true, true) => {
            let min = rng.between(1, 1000);
            (min, (min + rng.between(1, 100_000)).min(far_max))
        }
    }
}

/// A value `seq` may be set to: near the limit that binds its first column (at the
/// thresholds' exact edges, at the limit) or anywhere.
fn target(rng: &mut Rng, seq: &Seq) -> i128 {
    let column = seq.column.unwrap_or(seq.ty);
    let bound = seq.limit().min(column.limit(seq.descending()));
    let distance = match rng.below(12) {
        0 => 0,
        1 => 1,
        2 => rng.between(0, bound.max(0)),
        3 => ceil_div(7 * bound, 10),
        4 => ceil_div(7 * bound, 10) - 1,
        5 => ceil_div(17 * bound, 20),
        6 => ceil_div(17 * bound, 20) - 1,
        7 => bound - 1,
        8 => bound,
        9 => seq.limit(),
        10 => seq.limit() - rng.between(0, 3),
        _ => rng.between(0, 100),
    };
    let value = if seq.descending() {
        -distance
    } else {
        distance
    };
    value.clamp(seq.min, seq.max)
}

/// How a column gets its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fed {
    /// Given by the application (a key's parts, the parents read by `MAX()`).
    Plain,
    /// Its default calls `nextval` of the sequence.
    Default(usize),
    /// Owned by the sequence without a default: the application calls `nextval` itself.
    Owned(usize),
}

#[derive(Debug, Clone)]
struct Col {
    table: usize,
    name: String,
    ty: Ty,
    fed: Fed,
    /// The parent of its declared foreign key.
    parent: Option<usize>,
    /// Whether it leads a valid, non-partial B-tree index.
    leads: bool,
}

impl Col {
    fn sequence(&self) -> Option<usize> {
        match self.fed {
            Fed::Default(s) | Fed::Owned(s) => Some(s),
            Fed::Plain => None,
        }
    }

    /// Measured by headroom: fed by a sequence, or the child of a foreign key.
    fn measured(&self) -> bool {
        self.sequence().is_some() || self.parent.is_some()
    }
}

/// The ways a table is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `serial`, `bigserial`, `smallserial`, sometimes altered to another type.
    Serial,
    /// An identity, ALWAYS or BY DEFAULT, with random options.
    Identity,
    /// `DEFAULT nextval` of a sequence of its own (perhaps `OWNED BY`, perhaps elsewhere).
    OwnSequence,
    /// `DEFAULT nextval` of a sequence other columns use too.
    Shared,
    /// `OWNED BY` alone: the application calls `nextval` itself.
    Owned,
    /// A plain key, read by `MAX()` when a child references it.
    PlainKey,
    /// A two-column key, an identity in it or not, perhaps partitioned.
    PairKey,
    /// A one-to-one extension: its key is the child of an earlier key.
    Extension,
    /// The child of a two-column key, with or without an index that answers `MAX()`.
    PairChild,
    /// `INHERITS` an earlier table: its columns and defaults, not its keys.
    Inherits,
}

impl Shape {
    /// Each shape with its weight.
    const WEIGHTS: [(Shape, u64); 10] = [
        (Shape::Serial, 12),
        (Shape::Identity, 18),
        (Shape::OwnSequence, 18),
        (Shape::Shared, 9),
        (Shape::Owned, 5),
        (Shape::PlainKey, 10),
        (Shape::PairKey, 9),
        (Shape::Extension, 6),
        (Shape::PairChild, 7),
        (Shape::Inherits, 6),
    ];

    fn random(rng: &mut Rng) -> Shape {
        let total: u64 = Shape::WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut roll = rng.below(total);
        for (shape, weight) in Shape::WEIGHTS {
            if roll < weight {
                return shape;
            }
            roll -= weight;
        }
        Shape::Serial
    }
}

#[derive(Debug, Clone)]
struct Table {
    db: usize,
    /// The number its names carry (shared with its twin in the other database).
    n: usize,
    schema: String,
    name: String,
    /// `"schema"."table"`.
    sql: String,
    shape: Shape,
    cols: Vec<usize>,
    /// Rows may be inserted with every foreign key column left NULL.
    insertable: bool,
    /// The monitoring role may read its rows.
    readable: bool,
    partitioned: bool,
    /// A later table may inherit it.
    inheritable: bool,
}

/// A two-column key a child may reference: its two columns.
#[derive(Debug, Clone, Copy)]
struct Pair {
    first: usize,
    second: usize,
}

/// Everything the generator made: the databases' names and schemas, per database the
/// statements that build and drive it in order, and the model of what they made.
#[derive(Default)]
struct World {
    databases: Vec<(String, Vec<String>)>,
    statements: Vec<Vec<String>>,
    seqs: Vec<Seq>,
    cols: Vec<Col>,
    tables: Vec<Table>,
}

impl World {
    fn table_of(&self, c: usize) -> &Table {
        &self.tables[self.cols[c].table]
    }

    /// `database.schema.table.column`, as headroom writes it.
    fn full_name(&self, c: usize) -> String {
        let t = self.table_of(c);
        format!(
            "{}.{}.{}.{}",
            self.databases[t.db].0, t.schema, t.name, self.cols[c].name
        )
    }

    /// What the world holds, in a line: tables by shape, twins, partitioned and unreadable
    /// tables, sequences by access.
    fn summary(&self) -> String {
        let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
        for t in &self.tables {
            *shapes.entry(format!("{:?}", t.shape)).or_default() += 1;
        }
        let numbers: BTreeSet<usize> = self.tables.iter().map(|t| t.n).collect();
        let count = |f: &dyn Fn(&Table) -> bool| self.tables.iter().filter(|t| f(t)).count();
        let access = |a: Access| self.seqs.iter().filter(|s| s.access == a).count();
        format!(
            "{} databases, tables {shapes:?}, {} twins, {} partitioned, {} unreadable; \
             {} sequences, {} revoked, {} with USAGE alone",
            self.databases.len(),
            self.tables.len() - numbers.len(),
            count(&|t| t.partitioned),
            count(&|t| !t.readable),
            self.seqs.len(),
            access(Access::Revoked),
            access(Access::UsageOnly)
        )
    }

    /// How column `c` was made and how its sequence was driven, for a failure's message.
    fn story(&self, c: usize) -> String {
        let col = &self.cols[c];
        let t = self.table_of(c);
        let mut story = format!(
            "{:?} table {} ({}{}{}), {:?}, parent {:?}, leads {}",
            t.shape,
            t.sql,
            if t.partitioned { "partitioned " } else { "" },
            if t.readable { "" } else { "unreadable " },
            col.ty.sql(),
            col.fed,
            col.parent.map(|p| self.full_name(p)),
            col.leads
        );
        if let Some(s) = col.sequence() {
            story.push_str(&format!(" {:?}", self.seqs[s].access));
            for line in &self.seqs[s].story {
                story.push_str("\n    ");
                story.push_str(line);
            }
        }
        story
    }
}

/// The generator's state while it builds a [`World`].
struct Gen<'a> {
    rng: &'a mut Rng,
    seed: u64,
    w: World,
    /// Per database: the shared sequences, the unique single columns and two-column keys
    /// children may reference, and the statements that run after every table is made.
    shared: Vec<Vec<usize>>,
    singles: Vec<Vec<usize>>,
    pairs: Vec<Vec<Pair>>,
    last: Vec<Vec<String>>,
    /// The numbers of the tables that already have a twin.
    twinned: BTreeSet<usize>,
}

/// A table being made.
struct New {
    t: usize,
    db: usize,
    n: usize,
    schema: String,
    /// The table, quoted.
    q: String,
    defs: Vec<String>,
    /// What runs right after its `CREATE TABLE`.
    after: Vec<String>,
    /// Its single-column unique key, which children may reference.
    key: Option<usize>,
    /// `PARTITION BY …`, `INHERITS (…)`, or nothing.
    suffix: String,
}

impl Gen<'_> {
    fn world(rng: &mut Rng, seed: u64, tables: usize) -> World {
        let mut databases = vec![(
            "oracle".to_string(),
            vec!["public".to_string(), "we\"ird {table}; --".to_string()],
        )];
        if rng.chance(70) {
            databases.push((
                "ora \"cle\" {table} #1/?&=%+ ñ".to_string(),
                vec!["public".to_string(), "ñ schema".to_string()],
            ));
        }
        let dbs = databases.len();
        let mut g = Gen {
            rng,
            seed,
            w: World {
                databases,
                statements: vec![Vec::new(); dbs],
                ..World::default()
            },
            shared: vec![Vec::new(); dbs],
            singles: vec![Vec::new(); dbs],
            pairs: vec![Vec::new(); dbs],
            last: vec![Vec::new(); dbs],
            twinned: BTreeSet::new(),
        };
        for db in 0..dbs {
            let schemas = g.w.databases[db].1.clone();
            for schema in schemas.iter().filter(|s| *s != "public") {
                g.w.statements[db].push(format!("CREATE SCHEMA {}", ident(schema)));
            }
            for k in 0..g.rng.between(1, 3) as usize {
                let ty = *g.rng.pick(&Ty::ALL);
                let schema = g.schema(db);
                let s = g.named_sequence(db, &schema, &name(seed, "shared", k), ty);
                g.shared[db].push(s);
            }
        }
        for i in 0..tables {
            g.table(i);
        }
        g.drive();
        for db in 0..dbs {
            let last = std::mem::take(&mut g.last[db]);
            g.w.statements[db].extend(last);
        }
        g.grants();
        g.w
    }

    fn schema(&mut self, db: usize) -> String {
        self.rng.pick(&self.w.databases[db].1).clone()
    }

    fn name(&self, kind: &str, n: usize) -> String {
        name(self.seed, kind, n)
    }

    /// One table: its database, number and shape (a twin's, one time in eight when there
    /// are two databases), its columns, children and oddities.
    fn table(&mut self, i: usize) {
        let candidates: Vec<usize> = (0..self.w.tables.len())
            .filter(|&t| !self.twinned.contains(&self.w.tables[t].n))
            .collect();
        let twin = (self.w.databases.len() == 2 && !candidates.is_empty() && self.rng.chance(12))
            .then(|| *self.rng.pick(&candidates));
        let (db, n, schema, shape) = match twin {
            Some(j) => {
                self.twinned.insert(self.w.tables[j].n);
                let other = self.w.tables[j].clone();
                let db = 1 - other.db;
                let schema = if self.w.databases[db].1.contains(&other.schema) {
                    other.schema.clone()
                } else {
                    self.schema(db)
                };
                (db, other.n, schema, other.shape)
            }
            None => {
                let db = self.rng.below(self.w.databases.len() as u64) as usize;
                let schema = self.schema(db);
                (db, i, schema, Shape::random(self.rng))
            }
        };
        let table = self.name("t", n);
        let q = format!("{}.{}", ident(&schema), ident(&table));
        let t = self.w.tables.len();
        self.w.tables.push(Table {
            db,
            n,
            schema: schema.clone(),
            name: table,
            sql: q.clone(),
            shape,
            cols: Vec::new(),
            insertable: true,
            readable: true,
            partitioned: false,
            inheritable: false,
        });
        let mut nt = New {
            t,
            db,
            n,
            schema,
            q,
            defs: Vec::new(),
            after: Vec::new(),
            key: None,
            suffix: String::new(),
        };
        let made = match shape {
            Shape::Serial => self.serial(&mut nt),
            Shape::Identity => self.identity(&mut nt),
            Shape::OwnSequence => self.own_sequence(&mut nt),
            Shape::Shared => self.shared(&mut nt),
            Shape::Owned => self.owned(&mut nt),
            Shape::PlainKey => self.plain_key(&mut nt),
            Shape::PairKey => self.pair_key(&mut nt),
            Shape::Extension => self.extension(&mut nt),
            Shape::PairChild => self.pair_child(&mut nt),
            Shape::Inherits => self.inherits(&mut nt),
        };
        if !made {
            self.w.tables[t].shape = Shape::Serial;
            self.serial(&mut nt);
        }
        let shape = self.w.tables[t].shape;
        let keyed = matches!(
            shape,
            Shape::Serial | Shape::Identity | Shape::OwnSequence | Shape::Shared | Shape::PlainKey
        );
        // Not a column whose type is altered after: a partition key cannot be.
        let altered = nt.after.iter().any(|a| a.contains(" TYPE "));
        if keyed && !altered && nt.key.is_some() && self.rng.chance(15) {
            self.partition_by_key(&mut nt);
        }
        self.w.tables[t].inheritable = nt.suffix.is_empty()
            && matches!(
                shape,
                Shape::Serial | Shape::OwnSequence | Shape::Shared | Shape::PlainKey
            );
        self.children(&mut nt);
        self.oddities(&mut nt);
        let create = format!(
            "CREATE TABLE {} ({}){}",
            nt.q,
            nt.defs.join(", "),
            nt.suffix
        );
        self.w.statements[db].push(create);
        self.w.statements[db].append(&mut nt.after);
        if let Some(k) = nt.key {
            self.singles[db].push(k);
        }
    }

    fn col(&mut self, nt: &New, name: &str, ty: Ty, fed: Fed, leads: bool) -> usize {
        self.w.cols.push(Col {
            table: nt.t,
            name: name.to_string(),
            ty,
            fed,
            parent: None,
            leads,
        });
        let c = self.w.cols.len() - 1;
        self.w.tables[nt.t].cols.push(c);
        c
    }

    /// The rows of column `c`'s table a foreign key to it sees: its own, not those of
    /// tables that inherit it (`ONLY`), all its partitions' if partitioned.
    fn rows_of(&self, c: usize) -> String {
        let t = self.w.table_of(c);
        if t.partitioned {
            t.sql.clone()
        } else {
            format!("ONLY {}", t.sql)
        }
    }

    fn push_seq(&mut self, seq: Seq) -> usize {
        self.w.seqs.push(seq);
        self.w.seqs.len() - 1
    }

    /// A `CREATE SEQUENCE` of random options, statement and model.
    fn named_sequence(&mut self, db: usize, schema: &str, name: &str, ty: Ty) -> usize {
        let (options, mut seq) = random_sequence(self.rng, db, ty);
        let qs = format!("{}.{}", ident(schema), ident(name));
        let as_type = if ty == Ty::Big && self.rng.chance(50) {
            String::new()
        } else {
            format!(" AS {}", ty.sql())
        };
        let unlogged = if self.rng.chance(10) { "UNLOGGED " } else { "" };
        let create = format!("CREATE {unlogged}SEQUENCE {qs}{as_type} {options}");
        seq.regclass = format!("{}::regclass", lit(&qs));
        seq.alter = Some(format!("ALTER SEQUENCE {qs}"));
        seq.story.push(create.clone());
        self.w.statements[db].push(create);
        self.push_seq(seq)
    }

    fn serial(&mut self, nt: &mut New) -> bool {
        let (kw, ty) = *self.rng.pick(&[
            ("smallserial", Ty::Small),
            ("serial", Ty::Int),
            ("bigserial", Ty::Big),
        ]);
        let name = self.name("id", nt.n);
        let mut seq = Seq::serial(nt.db, &nt.q, &name, ty, kw);
        if self.rng.chance(25) {
            let to = *self.rng.pick(&Ty::ALL);
            nt.after.push(format!(
                "ALTER TABLE {} ALTER COLUMN {} TYPE {}",
                nt.q,
                ident(&name),
                to.sql()
            ));
            seq.story.push(format!("column altered to {}", to.sql()));
            seq.column = Some(to);
        }
        let col_ty = seq.column.unwrap_or(ty);
        let s = self.push_seq(seq);
        nt.defs.push(format!("{} {kw} PRIMARY KEY", ident(&name)));
        nt.key = Some(self.col(nt, &name, col_ty, Fed::Default(s), true));
        true
    }

    fn identity(&mut self, nt: &mut New) -> bool {
        let ty = *self.rng.pick(&Ty::ALL);
        let name = self.name("id", nt.n);
        let how = if self.rng.chance(50) {
            "ALWAYS"
        } else {
            "BY DEFAULT"
        };
        let pk = self.rng.chance(85);
        let s = self.identity_sequence(nt, &name, ty, how);
        let options = &self.w.seqs[s].story[0];
        let def = format!("{options}{}", if pk { " PRIMARY KEY" } else { "" });
        nt.defs.push(def);
        let c = self.col(nt, &name, ty, Fed::Default(s), pk);
        if pk {
            nt.key = Some(c);
        }
        true
    }

    /// The sequence of identity column `name` of the table being made, with random
    /// options; its first line of story is the column's definition.
    fn identity_sequence(&mut self, nt: &New, name: &str, ty: Ty, how: &str) -> usize {
        let (options, mut seq) = random_sequence(self.rng, nt.db, ty);
        seq.regclass = serial_sequence(&nt.q, name);
        seq.alter = Some(format!("ALTER TABLE {} ALTER COLUMN {}", nt.q, ident(name)));
        seq.column = Some(ty);
        let options = if options.is_empty() {
            String::new()
        } else {
            format!(" ({options})")
        };
        seq.story.push(format!(
            "{} {} GENERATED {how} AS IDENTITY{options}",
            ident(name),
            ty.sql()
        ));
        self.push_seq(seq)
    }

    fn own_sequence(&mut self, nt: &mut New) -> bool {
        let seq_ty = *self.rng.pick(&Ty::ALL);
        let col_ty = if self.rng.chance(50) {
            seq_ty
        } else {
            *self.rng.pick(&Ty::ALL)
        };
        let name = self.name("id", nt.n);
        let seq_schema = self.schema(nt.db);
        let seq_name = self.name("seq", nt.n);
        let s = self.named_sequence(nt.db, &seq_schema, &seq_name, seq_ty);
        self.w.seqs[s].column = Some(col_ty);
        let pk = self.rng.chance(80);
        nt.defs.push(format!(
            "{} {} DEFAULT nextval({}){}",
            ident(&name),
            col_ty.sql(),
            self.w.seqs[s].regclass,
            if pk { " PRIMARY KEY" } else { "" }
        ));
        // OWNED BY asks for the table's schema: a serial made by hand.
        if seq_schema == nt.schema && self.rng.chance(50) {
            nt.after.push(format!(
                "ALTER SEQUENCE {}.{} OWNED BY {}.{}",
                ident(&seq_schema),
                ident(&seq_name),
                nt.q,
                ident(&name)
            ));
        }
        self.w.seqs[s].story.push(format!(
            "default of {}.{} {}",
            nt.q,
            ident(&name),
            col_ty.sql()
        ));
        let c = self.col(nt, &name, col_ty, Fed::Default(s), pk);
        if pk {
            nt.key = Some(c);
        }
        true
    }

    fn shared(&mut self, nt: &mut New) -> bool {
        let s = *self.rng.pick(&self.shared[nt.db]);
        let col_ty = *self.rng.pick(&Ty::ALL);
        let name = self.name("id", nt.n);
        nt.defs.push(format!(
            "{} {} PRIMARY KEY DEFAULT nextval({})",
            ident(&name),
            col_ty.sql(),
            self.w.seqs[s].regclass
        ));
        let seq = &mut self.w.seqs[s];
        seq.column.get_or_insert(col_ty);
        seq.story.push(format!(
            "default of {}.{} {}",
            nt.q,
            ident(&name),
            col_ty.sql()
        ));
        nt.key = Some(self.col(nt, &name, col_ty, Fed::Default(s), true));
        true
    }

    fn owned(&mut self, nt: &mut New) -> bool {
        let ty = *self.rng.pick(&Ty::ALL);
        let name = self.name("id", nt.n);
        nt.defs
            .push(format!("{} {} PRIMARY KEY", ident(&name), ty.sql()));
        let s = self.owned_sequence(nt, &name, ty);
        nt.key = Some(self.col(nt, &name, ty, Fed::Owned(s), true));
        true
    }

    /// A sequence `OWNED BY` column `name` of the table being made, made right after it.
    fn owned_sequence(&mut self, nt: &mut New, name: &str, ty: Ty) -> usize {
        let seq_name = self.name("owned", nt.n);
        let (options, mut seq) = random_sequence(self.rng, nt.db, ty);
        let qs = format!("{}.{}", ident(&nt.schema), ident(&seq_name));
        let create = format!(
            "CREATE SEQUENCE {qs} AS {} {options} OWNED BY {}.{}",
            ty.sql(),
            nt.q,
            ident(name)
        );
        seq.regclass = format!("{}::regclass", lit(&qs));
        seq.alter = Some(format!("ALTER SEQUENCE {qs}"));
        seq.column = Some(ty);
        seq.story.push(create.clone());
        nt.after.push(create);
        self.push_seq(seq)
    }

    fn plain_key(&mut self, nt: &mut New) -> bool {
        let ty = *self.rng.pick(&Ty::ALL);
        let name = self.name("k", nt.n);
        nt.defs
            .push(format!("{} {} PRIMARY KEY", ident(&name), ty.sql()));
        nt.key = Some(self.col(nt, &name, ty, Fed::Plain, true));
        true
    }

    fn pair_key(&mut self, nt: &mut New) -> bool {
        let (r_ty, id_ty) = (*self.rng.pick(&Ty::ALL), *self.rng.pick(&Ty::ALL));
        let (r, id) = (self.name("r", nt.n), self.name("n", nt.n));
        nt.defs
            .push(format!("{} {} NOT NULL", ident(&r), r_ty.sql()));
        let fed = if self.rng.chance(60) {
            let s = self.identity_sequence(nt, &id, id_ty, "BY DEFAULT");
            nt.defs.push(self.w.seqs[s].story[0].clone());
            Fed::Default(s)
        } else {
            nt.defs
                .push(format!("{} {} NOT NULL", ident(&id), id_ty.sql()));
            Fed::Plain
        };
        let r_first = self.rng.chance(50);
        let (a, b) = if r_first { (&r, &id) } else { (&id, &r) };
        nt.defs
            .push(format!("PRIMARY KEY ({}, {})", ident(a), ident(b)));
        let first = self.col(nt, &r, r_ty, Fed::Plain, r_first);
        let second = self.col(nt, &id, id_ty, fed, !r_first);
        self.pairs[nt.db].push(Pair { first, second });
        if self.rng.chance(40) {
            self.partition(nt, &r);
        }
        true
    }

    /// Partitions the table being made by `column`, below zero and from zero.
    fn partition(&mut self, nt: &mut New, column: &str) {
        let table = &self.w.tables[nt.t];
        for (part, bounds) in [("p0", "(MINVALUE) TO (0)"), ("p1", "(0) TO (MAXVALUE)")] {
            nt.after.push(format!(
                "CREATE TABLE {}.{} PARTITION OF {} FOR VALUES FROM {bounds}",
                ident(&table.schema),
                ident(&format!("{} {part}", table.name)),
                nt.q
            ));
        }
        nt.suffix = format!(" PARTITION BY RANGE ({})", ident(column));
        self.w.tables[nt.t].partitioned = true;
    }

    fn partition_by_key(&mut self, nt: &mut New) {
        if let Some(k) = nt.key {
            let column = self.w.cols[k].name.clone();
            self.partition(nt, &column);
        }
    }

    fn extension(&mut self, nt: &mut New) -> bool {
        if self.singles[nt.db].is_empty() {
            return false;
        }
        let parent = *self.rng.pick(&self.singles[nt.db]);
        let ty = *self.rng.pick(&Ty::ALL);
        let name = self.name("x", nt.n);
        nt.defs.push(format!(
            "{} {} PRIMARY KEY REFERENCES {} ({})",
            ident(&name),
            ty.sql(),
            self.w.table_of(parent).sql,
            ident(&self.w.cols[parent].name)
        ));
        let c = self.col(nt, &name, ty, Fed::Plain, true);
        self.w.cols[c].parent = Some(parent);
        self.w.tables[nt.t].insertable = false;
        nt.key = Some(c);
        true
    }

    fn pair_child(&mut self, nt: &mut New) -> bool {
        if self.pairs[nt.db].is_empty() {
            return false;
        }
        let pair = *self.rng.pick(&self.pairs[nt.db]);
        let names = [self.name("cr", nt.n), self.name("cn", nt.n)];
        let mut children = Vec::new();
        for (name, parent) in names.iter().zip([pair.first, pair.second]) {
            let ty = *self.rng.pick(&Ty::ALL);
            nt.defs.push(format!("{} {}", ident(name), ty.sql()));
            let c = self.col(nt, name, ty, Fed::Plain, false);
            self.w.cols[c].parent = Some(parent);
            children.push(c);
        }
        let parent_table = self.w.table_of(pair.first).sql.clone();
        let rows = self.rows_of(pair.first);
        let (pa, pb) = (
            ident(&self.w.cols[pair.first].name),
            ident(&self.w.cols[pair.second].name),
        );
        let (a, b) = (ident(&names[0]), ident(&names[1]));
        nt.defs.push(format!(
            "FOREIGN KEY ({a}, {b}) REFERENCES {parent_table} ({pa}, {pb})"
        ));
        let q = &nt.q;
        match self.rng.below(9) {
            0 => {
                nt.after.push(format!("CREATE INDEX ON {q} ({a})"));
                self.w.cols[children[0]].leads = true;
            }
            1 => {
                nt.after
                    .push(format!("CREATE INDEX ON {q} ({b} DESC, {a})"));
                self.w.cols[children[1]].leads = true;
            }
            // Indexes that cannot answer MAX() in one dive.
            2 => nt
                .after
                .push(format!("CREATE INDEX ON {q} USING hash ({a})")),
            3 => nt
                .after
                .push(format!("CREATE INDEX ON {q} ({b}) WHERE {b} > 0")),
            4 => nt.after.push(format!("CREATE INDEX ON {q} (({a} + 0))")),
            5 => {
                nt.after
                    .push(format!("CREATE INDEX ON {q} ({b}) INCLUDE ({a})"));
                self.w.cols[children[1]].leads = true;
            }
            6 => nt
                .after
                .push(format!("CREATE INDEX ON {q} USING brin ({a})")),
            _ => {}
        }
        self.w.tables[nt.t].insertable = false;
        // Some of the parent's rows, those the child's types can hold, once the parents'
        // rows are in.
        let (ta, tb) = (self.w.cols[children[0]].ty, self.w.cols[children[1]].ty);
        self.last[nt.db].push(format!(
            "INSERT INTO {q} ({a}, {b}) SELECT {pa}, {pb} FROM {rows} \
             WHERE {pa} BETWEEN {} AND {} AND {pb} BETWEEN {} AND {}",
            ta.min(),
            ta.max(),
            tb.min(),
            tb.max()
        ));
        true
    }

    fn inherits(&mut self, nt: &mut New) -> bool {
        let bases: Vec<usize> = (0..self.w.tables.len())
            .filter(|&t| self.w.tables[t].db == nt.db && self.w.tables[t].inheritable)
            .collect();
        if bases.is_empty() {
            return false;
        }
        let base = *self.rng.pick(&bases);
        // Its columns and their defaults; not its keys, its identities or what owns them.
        for c in self.w.tables[base].cols.clone() {
            let col = self.w.cols[c].clone();
            let fed = match col.fed {
                Fed::Default(s) => {
                    self.w.seqs[s].story.push(format!("inherited by {}", nt.q));
                    Fed::Default(s)
                }
                _ => Fed::Plain,
            };
            self.col(nt, &col.name, col.ty, fed, false);
        }
        nt.suffix = format!(" INHERITS ({})", self.w.tables[base].sql);
        true
    }

    /// Children of earlier keys: most often none, sometimes one or two, each perhaps with
    /// an index of its own, rarely fed by a sequence too.
    fn children(&mut self, nt: &mut New) {
        let count = match self.rng.below(10) {
            0..=4 => 0,
            5..=8 => 1,
            _ => 2,
        };
        for j in 0..count {
            if self.singles[nt.db].is_empty() {
                return;
            }
            let parent = *self.rng.pick(&self.singles[nt.db]);
            let ty = *self.rng.pick(&Ty::ALL);
            let name = self.name("ref", nt.n * 10 + j);
            // Not where a statement fills the table later.
            let fed = if self.w.tables[nt.t].insertable && self.rng.chance(8) {
                let s = *self.rng.pick(&self.shared[nt.db]);
                self.w.tables[nt.t].insertable = false;
                self.w.seqs[s]
                    .story
                    .push(format!("default of child {}.{}", nt.q, ident(&name)));
                Fed::Default(s)
            } else {
                Fed::Plain
            };
            let default = match fed {
                Fed::Default(s) => format!(" DEFAULT nextval({})", self.w.seqs[s].regclass),
                _ => String::new(),
            };
            let parent_table = self.w.table_of(parent).sql.clone();
            let pc = ident(&self.w.cols[parent].name);
            nt.defs.push(format!(
                "{} {}{default} REFERENCES {parent_table} ({pc})",
                ident(&name),
                ty.sql()
            ));
            let indexed = self.rng.chance(30);
            let c = self.col(nt, &name, ty, fed, indexed);
            self.w.cols[c].parent = Some(parent);
            if indexed {
                nt.after
                    .push(format!("CREATE INDEX ON {} ({})", nt.q, ident(&name)));
                // The parent's largest value its type holds, in every row inserted.
                if fed == Fed::Plain {
                    let rows = self.rows_of(parent);
                    self.last[nt.db].push(format!(
                        "UPDATE {} SET {} = (SELECT max({pc}) FROM {} \
                         WHERE {pc} BETWEEN {} AND {})",
                        nt.q,
                        ident(&name),
                        rows,
                        ty.min(),
                        ty.max()
                    ));
                }
            }
        }
    }

    /// What headroom must not list or must not be misled by: a column of another type
    /// fed by a sequence, a column fed by a sequence and dropped, a column that both has a
    /// default and owns another sequence, a view and a materialized view.
    fn oddities(&mut self, nt: &mut New) {
        let db = nt.db;
        // Not where a statement fills the table later: its default would hand out values.
        if self.w.tables[nt.t].insertable && self.rng.chance(6) {
            let s = *self.rng.pick(&self.shared[db]);
            let ty = *self.rng.pick(&["numeric", "text", "real"]);
            nt.defs.push(format!(
                "{} {ty} DEFAULT nextval({})",
                ident(&self.name("num", nt.n)),
                self.w.seqs[s].regclass
            ));
            self.w.tables[nt.t].insertable = false;
            self.w.tables[nt.t].inheritable = false;
        }
        if self.rng.chance(6) {
            let s = *self.rng.pick(&self.shared[db]);
            let gone = ident(&self.name("gone", nt.n));
            nt.after.push(format!(
                "ALTER TABLE {} ADD COLUMN {gone} integer DEFAULT nextval({})",
                nt.q, self.w.seqs[s].regclass
            ));
            nt.after
                .push(format!("ALTER TABLE {} DROP COLUMN {gone}", nt.q));
        }
        if self.rng.chance(10) {
            let fed = self.w.tables[nt.t]
                .cols
                .iter()
                .copied()
                .find(|&c| matches!(self.w.cols[c].fed, Fed::Default(_)));
            let shape = self.w.tables[nt.t].shape;
            if let Some(c) = fed
                && matches!(shape, Shape::OwnSequence | Shape::Shared)
            {
                let (name, ty) = (self.w.cols[c].name.clone(), self.w.cols[c].ty);
                // Its default feeds it; the sequence it owns does not.
                self.owned_sequence(nt, &name, ty);
            }
        }
        let view = ident(&self.name("v", nt.n));
        match self.rng.below(20) {
            0 => nt.after.push(format!(
                "CREATE VIEW {}.{view} AS SELECT * FROM {}",
                ident(&nt.schema),
                nt.q
            )),
            1 => nt.after.push(format!(
                "CREATE MATERIALIZED VIEW {}.{view} AS SELECT * FROM {}",
                ident(&nt.schema),
                nt.q
            )),
            _ => {}
        }
    }

    /// Sets the sequences and inserts rows, in a random order, as the model says
    /// PostgreSQL will take them.
    fn drive(&mut self) {
        let mut actors: Vec<(bool, usize)> = (0..self.w.seqs.len())
            .map(|s| (true, s))
            .chain((0..self.w.tables.len()).map(|t| (false, t)))
            .collect();
        for round in 0..2 {
            // Fisher–Yates.
            for i in (1..actors.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                actors.swap(i, j);
            }
            for &(is_seq, i) in &actors {
                if is_seq {
                    if round == 0 || self.rng.chance(30) {
                        self.drive_sequence(i);
                    }
                } else if self.w.tables[i].insertable {
                    for _ in 0..self.rng.below(3) {
                        self.insert(i);
                    }
                }
            }
        }
    }

    fn drive_sequence(&mut self, s: usize) {
        for _ in 0..self.rng.below(4) {
            let seq = &mut self.w.seqs[s];
            let choice = self.rng.below(10);
            let sql = match (choice, seq.alter.clone()) {
                (0..=5, _) => {
                    let value = target(self.rng, seq);
                    let called = choice <= 3;
                    seq.last = value;
                    seq.called = called;
                    format!("SELECT setval({}, {value}, {called})", seq.regclass)
                }
                (6, Some(alter)) => {
                    let value = target(self.rng, seq);
                    seq.last = value;
                    seq.called = false;
                    format!("{alter} RESTART WITH {value}")
                }
                (7, Some(alter)) => {
                    seq.last = seq.start;
                    seq.called = false;
                    format!("{alter} RESTART")
                }
                _ => {
                    let wanted = if self.rng.chance(80) {
                        self.rng.between(1, 5)
                    } else {
                        self.rng.between(6, 60)
                    };
                    let mut k = 0;
                    while k < wanted {
                        let mut probe = seq.clone();
                        if probe.nextval().is_none() {
                            break;
                        }
                        *seq = probe;
                        k += 1;
                    }
                    if k == 0 {
                        continue;
                    }
                    format!(
                        "SELECT count(nextval({})) FROM generate_series(1, {k})",
                        seq.regclass
                    )
                }
            };
            seq.story.push(sql.clone());
            let db = seq.db;
            self.w.statements[db].push(sql);
        }
    }

    /// One row into table `t`, its foreign key columns NULL, if every value it takes from a
    /// sequence comes and fits its column.
    fn insert(&mut self, t: usize) {
        let table = self.w.tables[t].clone();
        let mut seqs = self.w.seqs.clone();
        let mut names = Vec::new();
        let mut values = Vec::new();
        for &c in &table.cols {
            let col = &self.w.cols[c];
            if col.parent.is_some() {
                continue;
            }
            let value = match col.fed {
                Fed::Plain => match self.rng.below(4) {
                    0 => self.rng.between(-100, 100),
                    1 => self.rng.between(0, col.ty.max()),
                    2 => col.ty.max() - self.rng.between(0, 5),
                    _ => self.rng.between(1, 1000),
                }
                .to_string(),
                Fed::Default(s) | Fed::Owned(s) => {
                    let Some(v) = seqs[s].nextval() else {
                        return;
                    };
                    if v < col.ty.min() || v > col.ty.max() {
                        return;
                    }
                    match col.fed {
                        Fed::Owned(_) => format!("nextval({})", seqs[s].regclass),
                        _ => "DEFAULT".to_string(),
                    }
                }
            };
            names.push(ident(&col.name));
            values.push(value);
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
            table.sql,
            names.join(", "),
            values.join(", ")
        );
        for (s, seq) in seqs.into_iter().enumerate() {
            if (seq.last, seq.called) != (self.w.seqs[s].last, self.w.seqs[s].called) {
                self.w.seqs[s] = seq;
                self.w.seqs[s].story.push(sql.clone());
            }
        }
        self.w.statements[table.db].push(sql);
    }

    /// The grants docs/postgres.md asks for on servers before 14, in every database and
    /// schema; then a few sequences and tables taken back from the monitoring role.
    fn grants(&mut self) {
        for (db, (name, schemas)) in self.w.databases.iter().enumerate() {
            let statements = &mut self.w.statements[db];
            statements.push(format!(
                "GRANT CONNECT ON DATABASE {} TO monitor",
                ident(name)
            ));
            for schema in schemas {
                let s = ident(schema);
                statements.push(format!("GRANT USAGE ON SCHEMA {s} TO monitor"));
                statements.push(format!(
                    "GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO monitor"
                ));
                statements.push(format!(
                    "GRANT SELECT ON ALL SEQUENCES IN SCHEMA {s} TO monitor"
                ));
            }
        }
        for s in 0..self.w.seqs.len() {
            let access = match self.rng.below(100) {
                0..=5 => Access::Revoked,
                6..=11 => Access::UsageOnly,
                _ => continue,
            };
            let seq = &mut self.w.seqs[s];
            seq.access = access;
            let grant = if access == Access::UsageOnly {
                "GRANT USAGE ON SEQUENCE %s TO monitor; "
            } else {
                ""
            };
            // A serial's or an identity's sequence is named by the server.
            let sql = format!(
                "DO $grants$ BEGIN EXECUTE format('REVOKE SELECT ON SEQUENCE %s FROM monitor; \
                 {grant}', {r}, {r}); END $grants$",
                r = seq.regclass
            );
            seq.story.push(sql.clone());
            self.w.statements[seq.db].push(sql);
        }
        for t in 0..self.w.tables.len() {
            if self.rng.chance(5) {
                let table = &mut self.w.tables[t];
                table.readable = false;
                self.w.statements[table.db]
                    .push(format!("REVOKE SELECT ON {} FROM monitor", table.sql));
            }
        }
    }
}
/// A sequence as the superuser reads it: `pg_sequence` and its own row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Read {
    schema: String,
    name: String,
    ty: Ty,
    start: i128,
    inc: i128,
    min: i128,
    max: i128,
    cycle: bool,
    last_value: i128,
    is_called: bool,
}

async fn superuser(pg: &Postgres, database: &str) -> PgConnection {
    PgConnection::connect(&pg.url(SUPERUSER, database))
        .await
        .unwrap_or_else(|e| panic!("connecting to {database:?} as the superuser: {e}"))
}

async fn fetch_one(conn: &mut PgConnection, sql: String) -> sqlx::postgres::PgRow {
    sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{sql}"))
}

async fn read_sequence(conn: &mut PgConnection, regclass: &str) -> Read {
    let row = fetch_one(
        conn,
        format!(
            "SELECT n.nspname::text, c.relname::text, format_type(s.seqtypid, NULL), \
                    s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle \
             FROM pg_sequence AS s JOIN pg_class AS c ON c.oid = s.seqrelid \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE s.seqrelid = {regclass}"
        ),
    )
    .await;
    let (schema, name): (String, String) = (row.get(0), row.get(1));
    let own = format!(
        "SELECT last_value, is_called FROM {}.{}",
        ident(&schema),
        ident(&name)
    );
    let state = fetch_one(conn, own).await;
    let int = |v: i64| i128::from(v);
    Read {
        ty: Ty::of(row.get::<String, _>(2).as_str()),
        start: int(row.get(3)),
        inc: int(row.get(4)),
        min: int(row.get(5)),
        max: int(row.get(6)),
        cycle: row.get(7),
        last_value: int(state.get(0)),
        is_called: state.get(1),
        schema,
        name,
    }
}

/// The type of `column` of `table` (quoted), as `format_type` writes it.
async fn column_type(conn: &mut PgConnection, table: &str, column: &str) -> Ty {
    let row = sqlx::query(
        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a \
         WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped",
    )
    .bind(table)
    .bind(column)
    .fetch_one(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("the type of {table}.{column:?}: {e}"));
    Ty::of(row.get::<String, _>(0).as_str())
}

/// `MAX(column)` of `rows` (a table, or `ONLY` a table), 0 when there are none.
async fn max_of(conn: &mut PgConnection, rows: &str, column: &str) -> i128 {
    let sql = format!("SELECT max({})::text FROM {rows}", ident(column));
    let row = fetch_one(conn, sql).await;
    row.get::<Option<String>, _>(0)
        .map(|v| v.parse().unwrap_or_else(|_| panic!("MAX() = {v:?}")))
        .unwrap_or(0)
}

/// What a column's row must say, as the oracle computes it.
#[derive(Debug, Clone)]
struct Expected {
    column_type: Ty,
    kind: &'static str,
    source: String,
    current: i128,
    max: i128,
    /// For a sequence-fed column: which limit binds, and whether it cycles.
    sequence: Option<(&'static str, bool)>,
    type_mismatch: bool,
}

impl Expected {
    fn status(&self) -> &'static str {
        let current = self.current.max(0);
        if current > self.max {
            "exhausted"
        } else if current * 100 >= 85 * self.max {
            "critical"
        } else if current * 100 >= 70 * self.max {
            "warning"
        } else {
            "ok"
        }
    }

    fn used_ratio(&self) -> f64 {
        if self.max == 0 {
            0.0
        } else {
            self.current.max(0) as f64 / self.max as f64
        }
    }

    /// The fields of the row this checks, as JSON (`used_ratio` apart: a float).
    fn json(&self) -> Value {
        let mut row = json!({
            "column_type": self.column_type.sql(),
            "kind": self.kind,
            "source": self.source,
            "current": exact(self.current),
            "max": exact(self.max),
            "remaining": exact(self.max - self.current),
            "status": self.status(),
            "type_mismatch": self.type_mismatch,
        });
        if let Some((by, cycle)) = self.sequence {
            row["limited_by"] = json!(by);
            row["cycle"] = json!(cycle);
        }
        row
    }
}

/// `v` as a JSON integer.
fn exact(v: i128) -> Value {
    if let Ok(v) = i64::try_from(v) {
        json!(v)
    } else if let Ok(v) = u64::try_from(v) {
        json!(v)
    } else {
        panic!("{v} does not fit a JSON integer")
    }
}

/// What the superuser reads of the world, and what the oracle computes from it.
struct Oracle {
    reads: Vec<Read>,
    types: Vec<Ty>,
    /// `MAX()` of the columns the monitoring role may read it of with one index dive: of
    /// the table's own rows (`ONLY`), a partitioned table's all.
    maxima: BTreeMap<usize, i128>,
}

impl Oracle {
    async fn read(pg: &Postgres, w: &World) -> Oracle {
        let mut conns = Vec::new();
        for (name, _) in &w.databases {
            conns.push(superuser(pg, name).await);
        }
        let mut reads = Vec::new();
        for seq in &w.seqs {
            reads.push(read_sequence(&mut conns[seq.db], &seq.regclass).await);
        }
        let mut types = Vec::new();
        let mut maxima = BTreeMap::new();
        for (c, col) in w.cols.iter().enumerate() {
            let t = w.table_of(c);
            let conn = &mut conns[t.db];
            types.push(column_type(conn, &t.sql, &col.name).await);
            if col.leads && t.readable && col.sequence().is_none() {
                let rows = if t.partitioned {
                    t.sql.clone()
                } else {
                    format!("ONLY {}", t.sql)
                };
                maxima.insert(c, max_of(conn, &rows, &col.name).await);
            }
        }
        for conn in conns {
            let _ = conn.close().await;
        }
        Oracle {
            reads,
            types,
            maxima,
        }
    }

    /// Column `c`'s `current` and whether it counts downwards, or why nothing tells it.
    fn current(&self, w: &World, c: usize) -> Result<(i128, bool), String> {
        let col = &w.cols[c];
        if let Some(s) = col.sequence() {
            let r = &self.reads[s];
            let why = match w.seqs[s].access {
                Access::Revoked => Some(
                    "the monitoring user may not read it: GRANT SELECT ON ALL SEQUENCES IN \
                     SCHEMA … (or the pg_read_all_data role)",
                ),
                Access::UsageOnly if !r.is_called => Some(
                    "the monitoring user has USAGE but not SELECT on it, and it has handed out \
                     nothing since it was last set: only SELECT shows where it stands",
                ),
                _ => None,
            };
            if let Some(why) = why {
                return Err(format!("sequence {}.{}: {why}", r.schema, r.name));
            }
            let last = if r.is_called {
                r.last_value
            } else {
                r.last_value - r.inc
            };
            return Ok(if r.inc < 0 {
                (-last, true)
            } else {
                (last, false)
            });
        }
        let parent = col.parent.expect("only measured columns have a current");
        let unknown = || {
            format!(
                "parent {} has no known value and neither column leads an index",
                w.full_name(parent)
            )
        };
        let own = self.maxima.get(&c).map(|&v| (v, false)).ok_or_else(unknown);
        if w.cols[parent].measured() {
            return self.current(w, parent).or(own);
        }
        match self.maxima.get(&parent) {
            Some(&v) => Ok((v, false)),
            None => own,
        }
    }

    /// Whether column `c`'s `current` comes from a `MAX()`, its own or along its chain.
    fn by_max(&self, w: &World, c: usize) -> bool {
        let col = &w.cols[c];
        match col.parent {
            _ if col.sequence().is_some() => false,
            None => false,
            Some(p) if w.cols[p].measured() && self.current(w, p).is_ok() => self.by_max(w, p),
            Some(p) if w.cols[p].measured() => self.maxima.contains_key(&c),
            Some(p) => self.maxima.contains_key(&p) || self.maxima.contains_key(&c),
        }
    }

    fn expected(&self, w: &World, c: usize) -> Result<Expected, String> {
        let col = &w.cols[c];
        let ty = self.types[c];
        let (current, descending) = self.current(w, c)?;
        if let Some(s) = col.sequence() {
            let r = &self.reads[s];
            let sequence_limit = if descending { -r.min } else { r.max };
            let type_limit = ty.limit(descending);
            let (max, by) = if sequence_limit < type_limit {
                (sequence_limit, "sequence")
            } else {
                (type_limit, "column")
            };
            return Ok(Expected {
                column_type: ty,
                kind: "sequence",
                source: format!("{}.{}", r.schema, r.name),
                current,
                max: max.max(0),
                sequence: Some((by, r.cycle)),
                type_mismatch: type_limit < sequence_limit,
            });
        }
        let parent = col.parent.expect("only measured columns are expected");
        Ok(Expected {
            column_type: ty,
            kind: "foreign_key",
            source: w.full_name(parent),
            current,
            // The child holds what its root hands out, in the root's direction.
            max: ty.limit(descending),
            sequence: None,
            type_mismatch: ty.max() < self.types[parent].max(),
        })
    }
}

/// Runs every statement of database `db`, one at a time, as the superuser.
async fn build(pg: &Postgres, w: &World, db: usize) {
    let name = &w.databases[db].0;
    pg.create_database(name)
        .unwrap_or_else(|e| panic!("creating database {name:?}: {e}"));
    let mut conn = superuser(pg, name).await;
    for sql in &w.statements[db] {
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())))
            .await
            .unwrap_or_else(|e| panic!("in {name:?}: {e}\n{sql}"));
    }
    let _ = conn.close().await;
}

/// The `MAX()` statements the monitoring role sent (`log_statement` on its sessions), each
/// with its database (`%d` in the server's `log_line_prefix`).
fn dives_sent(log: &str, databases: &[(String, Vec<String>)]) -> Vec<(usize, String)> {
    // The longest name first: one may begin with another.
    let mut names: Vec<(usize, &String)> = databases.iter().map(|(n, _)| n).enumerate().collect();
    names.sort_by_key(|(_, n)| std::cmp::Reverse(n.len()));
    let mut sent = Vec::new();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once(" db=") else {
            continue;
        };
        let Some(&(db, name)) = names.iter().find(|(_, n)| rest.starts_with(n.as_str())) else {
            continue;
        };
        // A simple query's text, or a prepared statement's as it is executed.
        let Some(logged) = rest[name.len()..].strip_prefix(" LOG:  ") else {
            continue;
        };
        let sql = match logged.strip_prefix("statement: ") {
            Some(sql) => Some(sql),
            None => logged
                .strip_prefix("execute ")
                .and_then(|e| e.split_once(": "))
                .map(|(_, sql)| sql),
        };
        if let Some(sql) = sql
            && sql.starts_with("SELECT 0, MAX(")
        {
            sent.push((db, sql.to_string()));
        }
    }
    sent
}

/// The plan of `sql` in database `name` with sequential scans turned off: a `Seq Scan`
/// left in it is a table no index can answer for.
async fn seq_scans(pg: &Postgres, name: &str, sql: &str) -> Vec<String> {
    let mut conn = superuser(pg, name).await;
    conn.execute("SET enable_seqscan = off")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN in {name:?}: {e}\n{sql}"));
    let _ = conn.close().await;
    plan.iter()
        .map(|row| row.get::<String, _>(0))
        .filter(|line| line.contains("Seq Scan"))
        .collect()
}

/// Every statement of the world, for a failure's output.
fn dump(w: &World) {
    for (db, statements) in w.statements.iter().enumerate() {
        eprintln!("-- database {:?}", w.databases[db].0);
        for sql in statements {
            eprintln!("{sql};");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_schemas_on_postgres_are_measured_as_an_independent_oracle_computes_them() {
    let tables = table_count();
    for seed in seeds() {
        run(seed, tables).await;
    }
}

/// Builds the world of `seed` on a cluster of its own, polls it, and holds every row to
/// the oracle.
async fn run(seed: u64, tables: usize) {
    eprintln!(
        "postgres oracle: seed {seed}, {tables} tables (HEADROOM_ORACLE_SEED={seed} replays it)"
    );
    let w = Gen::world(&mut Rng(seed), seed, tables);
    let mut pg = Postgres::start("oracle").unwrap_or_else(|e| panic!("starting PostgreSQL: {e}"));
    // The monitoring role's statements logged, each line with its database.
    pg.exec(
        "CREATE ROLE monitor LOGIN;
         ALTER ROLE monitor SET log_statement = 'all';
         ALTER SYSTEM SET log_line_prefix = '%m [%p] db=%d ';",
    )
    .unwrap_or_else(|e| panic!("creating the monitoring role: {e}"));
    pg.reload()
        .unwrap_or_else(|e| panic!("reloading the configuration: {e}"));
    for db in 0..w.databases.len() {
        build(&pg, &w, db).await;
    }
    let oracle = Oracle::read(&pg, &w).await;
    check_model(seed, &w, &oracle);

    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"1h\"\nquery_timeout = \"10s\"\n\
         [[shards]]\nname = \"pg\"\nurl = \"{}\"\n",
        pg.url("monitor", "postgres")
    );
    let app = spawn_app(settings(&toml)).await;
    app.wait_ready().await;
    let (status, doc) = app.get_json("/api/columns").await;
    assert_eq!(status, 200, "{doc:#}");
    let rows = doc["columns"].as_array().cloned().unwrap_or_default();
    let (status, shards) = app.get_json("/api/shards").await;
    assert_eq!(status, 200, "{shards:#}");
    let shard = &shards["shards"][0];
    assert_eq!(shard["up"], true, "seed {seed}: {shard:#}");

    let (mut wrong, summary) = compare(&w, &oracle, &rows, &shard["unresolved"]);
    wrong.extend(pages(&app, &rows).await);
    app.stop().await;
    let (dived, scans) = scans(&pg, &w).await;
    wrong.extend(scans);
    let by_max = (0..w.cols.len())
        .filter(|&c| w.cols[c].measured() && oracle.by_max(&w, c))
        .count();
    // Else the check of the plans would pass for want of statements to check.
    if by_max > 0 && dived == 0 {
        wrong.push(format!(
            "{by_max} columns are read by MAX(), but no MAX() statement is in the server's log"
        ));
    }

    eprintln!(
        "postgres oracle: {summary}, {by_max} read by MAX(), {dived} MAX() statements \
         explained; {}",
        w.summary()
    );
    if !wrong.is_empty() {
        dump(&w);
    }
    assert!(
        wrong.is_empty(),
        "seed {seed}: {} differences from the oracle:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The test's own model first: every sequence stands where the test says it drove it, with
/// the options it says it gave (PostgreSQL's defaults included).
fn check_model(seed: u64, w: &World, oracle: &Oracle) {
    for (s, seq) in w.seqs.iter().enumerate() {
        let r = &oracle.reads[s];
        let made = (seq.ty, seq.start, seq.inc, seq.min, seq.max, seq.cycle);
        let modelled = (made, seq.last, seq.called);
        let read = (
            (r.ty, r.start, r.inc, r.min, r.max, r.cycle),
            r.last_value,
            r.is_called,
        );
        if read != modelled {
            dump(w);
            panic!(
                "seed {seed}: the test's model of sequence {}.{} is wrong:\n  model {modelled:?}\n  \
                 read  {read:?}\n  {:#?}",
                r.schema, r.name, seq.story
            );
        }
    }
}

/// Every row of `/api/columns` and the shard's `unresolved` against the oracle: what
/// differs, and a summary of what was compared.
fn compare(w: &World, oracle: &Oracle, rows: &[Value], listed: &Value) -> (Vec<String>, String) {
    let mut by_name: BTreeMap<String, &Value> = BTreeMap::new();
    let mut wrong = Vec::new();
    for row in rows {
        let name = ["database", "schema", "table", "column"]
            .iter()
            .map(|k| row[*k].as_str().unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(".");
        if by_name.insert(name.clone(), row).is_some() {
            wrong.push(format!("{name:?}: twice"));
        }
    }
    let mut expected_names = BTreeSet::new();
    let mut unresolved = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for c in (0..w.cols.len()).filter(|&c| w.cols[c].measured()) {
        let name = w.full_name(c);
        let expected = match oracle.expected(w, c) {
            Err(reason) => {
                unresolved.push(format!("{name}: {reason}"));
                continue;
            }
            Ok(expected) => expected,
        };
        expected_names.insert(name.clone());
        *counts
            .entry(format!("{} {}", expected.kind, expected.status()))
            .or_default() += 1;
        let Some(row) = by_name.get(&name) else {
            wrong.push(format!("{name:?}: no row\n  {}", w.story(c)));
            continue;
        };
        let want = expected.json();
        let got: Value = want
            .as_object()
            .map(|o| o.keys().map(|k| (k.clone(), row[k].clone())).collect())
            .unwrap_or_default();
        let stray = expected.sequence.is_none()
            && (row.get("limited_by").is_some() || row.get("cycle").is_some());
        // serde_json parses a float to within an ulp or so, not always exactly.
        let ratio = row["used_ratio"].as_f64().unwrap_or(f64::NAN);
        let off = (ratio - expected.used_ratio()).abs() > 1e-12 * expected.used_ratio();
        if got != want || stray || off {
            wrong.push(format!(
                "{name:?}:\n  expected {want}, used_ratio {}\n  got      {got}, used_ratio \
                 {ratio}\n  {}\n  {:?}",
                expected.used_ratio(),
                w.story(c),
                w.cols[c].sequence().map(|s| &oracle.reads[s]),
            ));
        }
    }
    for name in by_name.keys() {
        if !expected_names.contains(name) {
            wrong.push(format!("{name:?}: a row the oracle does not expect"));
        }
    }
    let mut listed: Vec<String> = listed
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    listed.sort();
    unresolved.sort();
    if listed != unresolved {
        wrong.push(format!(
            "unresolved:\n  expected {unresolved:#?}\n  got      {listed:#?}"
        ));
    }
    let summary = format!(
        "{} rows, {} unresolved: {counts:?}",
        expected_names.len(),
        unresolved.len()
    );
    (wrong, summary)
}

/// Every page and format over `rows` answers: the fleet page, the metrics, the other
/// orders of `/api/columns`, each column's page and history.
async fn pages(app: &TestApp, rows: &[Value]) -> Vec<String> {
    let mut paths = vec![
        "/".to_string(),
        "/metrics".to_string(),
        "/api/columns?sort=exhaustion".to_string(),
        "/api/columns?sort=name&status=critical,exhausted".to_string(),
    ];
    for row in rows {
        let url = row["plan_url"].as_str().unwrap_or("");
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        paths.push(format!("{}?{query}", path.replacen("/api", "", 1)));
        paths.push(format!("{path}/history?{query}"));
    }
    let mut wrong = Vec::new();
    for path in &paths {
        let (status, body) = app.get_text(path).await;
        if status != 200 {
            wrong.push(format!("GET {path}: {status} {body}"));
        }
    }
    wrong
}

/// The monitoring role read `MAX()` only where an index answers it in one dive: how many
/// statements it sent, and those whose plan scans a table.
async fn scans(pg: &Postgres, w: &World) -> (usize, Vec<String>) {
    let sent = dives_sent(&pg.server_log(), &w.databases);
    let mut wrong = Vec::new();
    for (db, sql) in &sent {
        let scans = seq_scans(pg, &w.databases[*db].0, sql).await;
        if !scans.is_empty() {
            wrong.push(format!("a MAX() that scans: {scans:?}\n  {sql}"));
        }
    }
    (sent.len(), wrong)
}
