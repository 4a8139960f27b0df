//! `headroom-demo`: two throwaway MariaDB shards with an Etsy-like schema and a Flickr
//! ticket pair just below 2^31, IDs handed out continuously, monitored by a real headroom.
//! Watch the INT columns that store ticket IDs go from critical to exhausted.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use tokio_util::sync::CancellationToken;

use headroom::config;
use headroom::sandbox::{self, MariaDb};
use headroom::startup::App;
use headroom::telemetry::{self, LogFormat};

/// Runs the demo until Ctrl-C.
#[derive(Parser)]
#[command(name = "headroom-demo", about)]
struct Cli {
    /// Where headroom listens.
    #[arg(long, default_value = "127.0.0.1:9187")]
    listen: SocketAddr,
    /// Ticket IDs handed out per second over the pair.
    #[arg(long, default_value_t = 2000)]
    rate: u32,
    /// The first ticket ID; INT columns overflow at 2147483647.
    #[arg(long, default_value_t = 2_147_000_000)]
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

    let dir = tempfile::Builder::new()
        .prefix("headroom-demo-")
        .tempdir()
        .context("creating a directory for the demo configuration")?;
    let config_path = dir.path().join("headroom.toml");
    std::fs::write(&config_path, demo_config(&cli, &servers, &tickets))
        .context("writing the demo configuration")?;
    let settings = config::load(&config_path).context("loading the demo configuration")?;

    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
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
            cli.rate,
            token.clone(),
        ));
        println!();
        println!("headroom is watching the demo cluster. Open:");
        println!("  http://{addr}/api/columns?status=warning,critical,exhausted");
        println!("  http://{addr}/api/columns");
        println!("  http://{addr}/api/shards");
        println!("  http://{addr}/api/sources");
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
        println!();
        let result = app.run(token.clone()).await;
        token.cancel();
        let _ = traffic.await;
        result
    })?;
    drop(tickets);
    drop(servers);
    Ok(())
}

fn demo_config(cli: &Cli, shards: &[MariaDb], tickets: &[MariaDb]) -> String {
    let head = format!(
        "[server]\nlisten = \"{}\"\n[poll]\ninterval = \"5s\"\nquery_timeout = \"3s\"\n",
        cli.listen
    );
    sandbox::cluster_toml(&head, shards, tickets)
}

/// Hands out tickets on both servers and stores them on the shards, as the site would.
async fn traffic(
    shard_urls: Vec<String>,
    ticket_urls: Vec<String>,
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
    let per_server = (rate / tickets.len().max(1) as u32).max(1);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut warned = false;
    let mut round: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        round += 1;
        for (i, pool) in tickets.iter().enumerate() {
            let id = match sandbox::hand_out_tickets_async(pool, per_server).await {
                Ok(id) => id,
                Err(e) => {
                    tracing::warn!(error = %e, "Demo ticket server refused");
                    continue;
                }
            };
            let shard = &shards[(round as usize + i) % shards.len()];
            if let Err(e) = store(shard, id).await
                && !warned
            {
                // Exactly Etsy's August 2012: the ID is fine, the column cannot hold it.
                tracing::warn!(ticket = id, error = %e, "Demo insert refused by a shard");
                warned = true;
            }
        }
    }
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
