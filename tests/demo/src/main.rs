//! `headroom-demo`: two throwaway MariaDB shards with an Etsy-like schema, a Flickr ticket
//! pair just below 2^31, and a PostgreSQL shard whose `serial` is close to 2^31 and whose
//! `integer` column stores ticket IDs; IDs handed out continuously, monitored by a real
//! headroom. Watch the INT columns that store ticket IDs go from critical to exhausted.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio_util::sync::CancellationToken;

use headroom::config;
use headroom::startup::App;
use headroom::telemetry::{self, LogFormat};
use headroom_sandbox::pagerduty::Receiver;
use headroom_sandbox::{self as sandbox, MariaDb, Postgres};

/// The PostgreSQL shard's schema: an account `serial` close to 2^31, and listings whose
/// `integer` column stores ticket IDs (bigint everywhere else).
const PG_SCHEMA_SQL: &str = "
CREATE TABLE accounts (account_id serial PRIMARY KEY, name text NOT NULL DEFAULT 'demo');
SELECT setval('accounts_account_id_seq', 2147400000);
CREATE TABLE listings (
    listing_id bigserial PRIMARY KEY,
    account_id integer NOT NULL REFERENCES accounts,
    ticket_id integer NOT NULL
);
CREATE INDEX listings_ticket_id ON listings (ticket_id);
INSERT INTO accounts DEFAULT VALUES;
";

/// The PostgreSQL shard's column that stores ticket IDs.
const PG_REFERENCES_TOML: &str = r#"
[[references]]
source = "tickets64"
columns = ["public.listings.ticket_id"]
"#;

/// Runs the demo until Ctrl-C.
#[derive(Parser)]
#[command(name = "headroom-demo", about)]
struct Cli {
    /// Where headroom listens.
    #[arg(long, default_value = "127.0.0.1:9187")]
    listen: SocketAddr,
    /// Ticket IDs handed out per second over the pair.
    #[arg(long, default_value_t = 800)]
    rate: u32,
    /// The first ticket ID; INT columns overflow at 2147483647.
    #[arg(long, default_value_t = 2_147_200_000)]
    start: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(LogFormat::Text);
    if !sandbox::available() {
        bail!(
            "MariaDB server binaries not found: install them with `apt-get install mariadb-server` (the demo script does)"
        );
    }
    // Servers are booted on this thread, which lives as long as they must.
    let (servers, tickets) = boot(&cli)?;
    let pg = boot_postgres()?;

    let dir = tempfile::Builder::new()
        .prefix("headroom-demo-")
        .tempdir()
        .context("creating a directory for the demo configuration")?;
    let config_path = dir.path().join("headroom.toml");
    std::fs::write(
        dir.path().join("routing-key"),
        "demo0routing0key0000000000000000\n",
    )
    .context("writing the demo routing key")?;

    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        // A local stand-in for PagerDuty: the demo's pages are printed as they arrive.
        let receiver = Receiver::start(0)
            .await
            .context("starting the PagerDuty stand-in")?;
        std::fs::write(
            &config_path,
            demo_config(&cli, &servers, &tickets, pg.as_ref(), &receiver.url()),
        )
        .context("writing the demo configuration")?;
        let settings = config::load(&config_path).context("loading the demo configuration")?;
        let app = App::build(settings).await?;
        let addr = app.local_addr();
        let token = CancellationToken::new();
        headroom::shutdown::cancel_on_signal(token.clone());
        let traffic = tokio::spawn(traffic(
            servers
                .iter()
                .map(|s| s.url("root", Some("etsy")))
                .collect(),
            tickets
                .iter()
                .map(|t| t.url("root", Some("tickets")))
                .collect(),
            pg.as_ref()
                .map(|pg| pg.url(sandbox::postgres::SUPERUSER, "app")),
            cli.rate,
            token.clone(),
        ));
        print_help(addr, &cli, &config_path, &receiver.url(), &servers[0]);
        let printer = tokio::spawn(print_pages(receiver, token.clone()));
        let result = app.run(token.clone()).await;
        token.cancel();
        let _ = traffic.await;
        let _ = printer.await;
        result
    })?;
    drop(pg);
    drop(tickets);
    drop(servers);
    Ok(())
}

/// Starts and seeds the PostgreSQL shard, when the PostgreSQL binaries are installed (the
/// demo script installs them); the demo runs without it otherwise.
fn boot_postgres() -> anyhow::Result<Option<Postgres>> {
    if !sandbox::postgres::available() {
        println!("PostgreSQL binaries not found: the demo runs without its PostgreSQL shard.");
        return Ok(None);
    }
    println!("Starting a throwaway PostgreSQL cluster (shard pg-01)...");
    let pg = Postgres::start("pg-01").context("starting the demo's PostgreSQL cluster")?;
    pg.create_database("app")
        .context("creating the demo's PostgreSQL database")?;
    pg.exec_in("app", PG_SCHEMA_SQL)
        .context("seeding the PostgreSQL shard")?;
    Ok(Some(pg))
}

/// Starts and seeds the two shards and the ticket pair.
fn boot(cli: &Cli) -> anyhow::Result<(Vec<MariaDb>, Vec<MariaDb>)> {
    println!("Starting 4 throwaway MariaDB servers (2 shards, 2 ticket servers)...");
    let mut servers = sandbox::start_many(&["shard-01", "shard-02", "ticket-a", "ticket-b"])
        .context("starting the demo servers")?;
    let tickets = servers.split_off(2);
    for shard in &servers {
        shard
            .exec(sandbox::ETSY_SCHEMA_SQL)
            .context("seeding a shard")?;
    }
    for (i, t) in tickets.iter().enumerate() {
        t.exec(&sandbox::ticket_server_sql(i as u8 + 1, cli.start))
            .context("seeding a ticket server")?;
    }
    Ok((servers, tickets))
}

/// What to open, and how to see a page resolve.
fn print_help(
    addr: SocketAddr,
    cli: &Cli,
    config_path: &std::path::Path,
    pager_url: &str,
    shard: &MariaDb,
) {
    println!();
    println!(
        "headroom is watching the demo cluster (shard-01, shard-02 and, on PostgreSQL, pg-01). Open in a browser:"
    );
    println!("  http://{addr}/");
    println!("or the JSON and metrics behind it:");
    println!("  http://{addr}/api/columns?status=warning,critical,exhausted");
    println!("  http://{addr}/api/columns");
    println!("  http://{addr}/api/shards");
    println!("  http://{addr}/api/sources");
    println!("  http://{addr}/api/incidents");
    println!("  http://{addr}/metrics");
    println!("Or, from another terminal:");
    println!(
        "  cargo run -q --bin headroom -- check --config {}",
        config_path.display()
    );
    println!(
        "Tickets start at {} and advance by {} a second: INT columns that store them \
         overflow at 2147483647 (about {} s from now). Ctrl-C stops everything.",
        cli.start,
        cli.rate,
        2_147_483_647u64.saturating_sub(cli.start) / u64::from(cli.rate.max(1))
    );
    println!(
        "Pages go to a local PagerDuty stand-in at {} and are printed below. To see one \
         resolve, widen a column, e.g.:",
        pager_url
    );
    println!(
        "  {} -e 'ALTER TABLE etsy.activity_feed MODIFY actor_id BIGINT NOT NULL'",
        shard.client_command()
    );
    println!();
}

fn demo_config(
    cli: &Cli,
    shards: &[MariaDb],
    tickets: &[MariaDb],
    pg: Option<&Postgres>,
    pager_url: &str,
) -> String {
    let head = format!(
        "[server]\nlisten = \"{}\"\n[poll]\ninterval = \"5s\"\nquery_timeout = \"3s\"\n\
         [pagerduty]\nrouting_key_file = \"routing-key\"\nurl = \"{pager_url}\"\nblind_after = \"1m\"\n\
         [state]\npath = \"state.json\"\n",
        cli.listen
    );
    let mut text = sandbox::cluster_toml(&head, shards, tickets);
    if let Some(pg) = pg {
        text.push_str(&format!(
            "[[shards]]\nname = \"pg-01\"\nurl = \"{}\"\n{PG_REFERENCES_TOML}",
            pg.url(sandbox::postgres::SUPERUSER, "app")
        ));
    }
    text
}

/// Prints every event the PagerDuty stand-in accepts.
async fn print_pages(receiver: Receiver, shutdown: CancellationToken) {
    let mut shown = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let events = receiver.events();
        for e in events.iter().skip(shown) {
            let action = e["event_action"].as_str().unwrap_or("?");
            let text = match action {
                "trigger" => {
                    let mut text = format!(
                        "{}: {}",
                        e["payload"]["severity"].as_str().unwrap_or("?"),
                        e["payload"]["summary"].as_str().unwrap_or("")
                    );
                    // A column's page links to where to look.
                    if let Some(page) = e["payload"]["custom_details"]["page_url"].as_str() {
                        text.push_str(&format!("\n              {page}"));
                    }
                    text
                }
                _ => e["dedup_key"].as_str().unwrap_or("").to_string(),
            };
            println!("PAGE {action:<8} {text}");
        }
        shown = events.len();
    }
}

/// Hands out tickets on both servers and stores them on the shards, as the site would.
async fn traffic(
    shard_urls: Vec<String>,
    ticket_urls: Vec<String>,
    pg_url: Option<String>,
    rate: u32,
    shutdown: CancellationToken,
) {
    let connect = |url: String| async move {
        MySqlPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
    };
    let mut shards = Vec::new();
    for url in shard_urls {
        match connect(url).await {
            Ok(p) => shards.push(p),
            Err(e) => return tracing::error!(error = %e, "Demo traffic cannot connect"),
        }
    }
    let mut tickets = Vec::new();
    for url in ticket_urls {
        match connect(url).await {
            Ok(p) => tickets.push(p),
            Err(e) => return tracing::error!(error = %e, "Demo traffic cannot connect"),
        }
    }
    let mut pg = None;
    if let Some(url) = pg_url {
        match PgPoolOptions::new().max_connections(1).connect(&url).await {
            Ok(p) => pg = Some(p),
            Err(e) => return tracing::error!(error = %e, "Demo traffic cannot connect"),
        }
    }
    let mut pg_warned = false;
    // Each server steps by 2, so the highest ID advances by `rate` when each of the pair
    // hands out rate / 2 tickets a second. Every tick hands out what is due so far, so the
    // rate holds even when a tick runs late.
    let rows_per_second = f64::from(rate.max(2)) / 2.0;
    let started = tokio::time::Instant::now();
    let mut done: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut warned = false;
    let mut round: usize = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        round += 1;
        let due = (started.elapsed().as_secs_f64() * rows_per_second) as u64;
        let rows = u32::try_from(due.saturating_sub(done).min(5_000)).unwrap_or(5_000);
        if rows == 0 {
            continue;
        }
        done += u64::from(rows);
        let handed = futures::future::join_all(
            tickets
                .iter()
                .map(|pool| sandbox::hand_out_tickets_async(pool, rows)),
        )
        .await;
        for (i, result) in handed.into_iter().enumerate() {
            let id = match result {
                Ok(id) => id,
                Err(e) => {
                    tracing::warn!(error = %e, "Demo ticket server refused");
                    continue;
                }
            };
            let shard = &shards[(round + i) % shards.len()];
            if let Err(e) = store(shard, id).await
                && !warned
            {
                // Exactly Etsy's August 2012: the ID is fine, the column cannot hold it.
                tracing::warn!(ticket = id, error = %e, "Demo insert refused by a shard");
                warned = true;
            }
            if let Some(pg) = &pg
                && let Err(e) = store_pg(pg, id).await
                && !pg_warned
            {
                // PostgreSQL refuses a value out of range: 22003, integer out of range.
                tracing::warn!(ticket = id, error = %e, "Demo insert refused by the PostgreSQL shard");
                pg_warned = true;
            }
        }
    }
}

/// A new account (its serial advances) and a listing that stores ticket `id`.
async fn store_pg(pg: &PgPool, id: u64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO accounts DEFAULT VALUES")
        .execute(pg)
        .await?;
    let ticket = i64::try_from(id).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO listings (account_id, ticket_id) \
         SELECT MIN(account_id), $1 FROM accounts",
    )
    .bind(ticket)
    .execute(pg)
    .await?;
    Ok(())
}

/// Stores a new shop, treasury, comment and feed entry under ticket `id`.
async fn store(shard: &MySqlPool, id: u64) -> Result<(), sqlx::Error> {
    let statements: [(&str, u64); 5] = [
        (
            "INSERT IGNORE INTO shops (shop_id, name) VALUES (?, 'demo shop')",
            id,
        ),
        (
            "INSERT IGNORE INTO treasuries (treasury_id, shop_id, title) VALUES (?, 1, 'picks')",
            id,
        ),
        (
            "INSERT IGNORE INTO audit_log (user_id) VALUES (? % 4294967295)",
            id,
        ),
        (
            "INSERT INTO treasury_comments (comment_id, treasury_id) VALUES (?, ?) ON DUPLICATE KEY UPDATE body = body",
            id,
        ),
        ("INSERT INTO activity_feed (actor_id) VALUES (?)", id),
    ];
    for (sql, value) in statements {
        let mut query = sqlx::query(sql).bind(value);
        if sql.contains("?, ?") {
            query = query.bind(value);
        }
        query.execute(shard).await?;
    }
    Ok(())
}
