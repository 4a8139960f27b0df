//! A fleet split across replicas (`[cluster]`, `run --member I/N`): together the members
//! measure every shard exactly once, each on its own share; two replicas with the same
//! member are an HA pair measuring the same shards.

use std::collections::BTreeSet;

use headroom::cluster::Member;

use crate::harness::{metric_value, settings, spawn_app, start_servers};

/// Nine shards on one server, each watching a schema of its own (one table, an
/// auto-increment counter at `100 + i`), and the `[cluster]` section given.
fn fleet_toml(url: &str, cluster: &str) -> String {
    let mut toml = String::from(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"1s\"\nquery_timeout = \"2s\"\n",
    );
    toml.push_str(cluster);
    for i in 1..=9 {
        toml.push_str(&format!(
            "[[shards]]\nname = \"shard-{i:02}\"\nurl = \"{url}\"\nschemas = [\"s{i}\"]\n"
        ));
    }
    toml
}

/// The shard names on /api/shards, each with its one column's `current`.
async fn measured(app: &crate::harness::TestApp) -> Vec<(String, i64)> {
    let (_, columns) = app.get_json("/api/columns").await;
    let mut out: Vec<(String, i64)> = columns["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["shard"].as_str().expect("shard").to_string(),
                c["current"].as_i64().expect("current"),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_measure_every_shard_exactly_once_and_an_ha_pair_the_same_ones() {
    let server = start_servers(&["cluster"]).remove(0);
    let mut sql = String::new();
    for i in 1..=9 {
        sql.push_str(&format!(
            "CREATE DATABASE s{i}; CREATE TABLE s{i}.t (id INT AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT = {};",
            100 + i
        ));
    }
    server.exec(&sql).expect("seeding");
    let url = server.url("root", None);

    let mut apps = Vec::new();
    for member in 0..3 {
        let cluster = format!("[cluster]\nmember = {member}\nmembers = 3\n");
        apps.push(spawn_app(settings(&fleet_toml(&url, &cluster))).await);
    }
    // The HA twin of member 1, from the command line's override instead of the file.
    let mut twin_settings = settings(&fleet_toml(&url, ""));
    twin_settings.set_member(Some("1/3".parse::<Member>().expect("member")));
    apps.push(spawn_app(twin_settings).await);

    let mut seen = BTreeSet::new();
    let mut shares = Vec::new();
    for (member, app) in apps.iter().enumerate() {
        app.wait_ready().await;
        let share = measured(app).await;
        let (_, shards) = app.get_json("/api/shards").await;
        let listed: Vec<&str> = shards["shards"]
            .as_array()
            .expect("shards")
            .iter()
            .map(|s| s["name"].as_str().expect("name"))
            .collect();
        let names: Vec<&str> = share.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            listed, names,
            "member {member}: /api/shards lists what it measures"
        );
        for (name, current) in &share {
            // Every column measured exactly: shard-0i's next ID is 100 + i.
            let i: i64 = name["shard-".len()..].parse().expect("number");
            assert_eq!(*current, 100 + i, "{name}");
        }
        let metrics = app.metrics_text();
        let index = if member == 3 {
            "1"
        } else {
            &member.to_string()
        };
        assert_eq!(
            metric_value(
                &metrics,
                "headroom_cluster_member_shards",
                &[("member", index), ("members", "3")]
            ),
            Some(share.len() as f64),
            "{metrics}"
        );
        assert_eq!(
            metric_value(&metrics, "headroom_cluster_configured_shards", &[]),
            Some(9.0)
        );
        if member < 3 {
            for (name, _) in &share {
                assert!(seen.insert(name.clone()), "{name} measured by two members");
            }
        }
        shares.push(share);
    }
    let all: BTreeSet<String> = (1..=9).map(|i| format!("shard-{i:02}")).collect();
    assert_eq!(seen, all, "together the members measure every shard");
    assert_eq!(shares[3], shares[1], "an HA pair measures the same shards");
    assert!(
        shares[..3].iter().all(|s| !s.is_empty()),
        "nine shards spread over three members: {shares:?}"
    );
    for app in apps {
        app.stop().await;
    }
}
