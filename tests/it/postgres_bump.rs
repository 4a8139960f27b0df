//! `headroom bump` on PostgreSQL, against a real throwaway cluster: every ascending
//! sequence that feeds an integer column of a dev shard, and a sequence source, raised
//! above the bound with `setval`, never lowered; a second run changes nothing.

use headroom_sandbox::Postgres;

fn bump(toml: &str, args: &[&str]) -> (i32, String, String) {
    crate::harness::headroom("bump", toml, args)
}

/// The next value `seq` hands out in `database`.
fn next(pg: &Postgres, database: &str, seq: &str) -> i64 {
    let out = pg
        .exec_in(
            database,
            &format!(
                "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {seq};"
            ),
        )
        .expect("reading a sequence");
    out.split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no value in {out:?}"))
}

#[test]
fn bump_raises_sequences_above_the_bound_never_lowering_one_and_a_second_run_changes_nothing() {
    let pg = Postgres::start("bump-pg").expect("a PostgreSQL cluster");
    pg.create_database("app").expect("database");
    pg.exec_in(
        "app",
        "CREATE TABLE small (id serial PRIMARY KEY);
         CREATE TABLE big (id bigserial PRIMARY KEY);
         CREATE TABLE \"we'ird \"\"t\"\"\" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
         CREATE TABLE ahead (id bigserial PRIMARY KEY);
         SELECT setval('ahead_id_seq', 5000000000);
         CREATE SEQUENCE down_seq INCREMENT BY -1;
         CREATE TABLE down (id bigint PRIMARY KEY DEFAULT nextval('down_seq'));",
    )
    .expect("seed");
    pg.create_database("ids").expect("database");
    pg.exec_in(
        "ids",
        "CREATE SEQUENCE global_ids INCREMENT BY 2 START WITH 2;",
    )
    .expect("seed");
    let url = |db| pg.url(headroom_sandbox::postgres::SUPERUSER, db);
    let toml = format!(
        "[[shards]]\nname = \"pg\"\nurl = \"{}\"\nenvironment = \"dev\"\n\
         [[sources]]\nname = \"ids\"\nkind = \"sequence\"\nservers = [\"{}\"]\n\
         sequence = \"public.global_ids\"\nenvironment = \"dev\"\n",
        url("app"),
        url("ids")
    );

    let (code, stdout, stderr) = bump(&toml, &["--apply"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("raised"), "{stdout}");
    // The bigint sequences now hand out the first value above INT's maximum; the serial's
    // integer column cannot hold it and is left alone; a sequence ahead is not lowered.
    assert_eq!(next(&pg, "app", "big_id_seq"), 2_147_483_648);
    assert_eq!(
        next(&pg, "app", "\"we'ird \"\"t\"\"_id_seq\""),
        2_147_483_648
    );
    assert_eq!(next(&pg, "app", "small_id_seq"), 1);
    assert_eq!(next(&pg, "app", "ahead_id_seq"), 5_000_000_001);
    // The source's sequence keeps its series: even values only.
    assert_eq!(next(&pg, "ids", "global_ids"), 2_147_483_648);
    assert!(stdout.contains("too narrow"), "{stdout}");

    let (code, again, stderr) = bump(&toml, &["--apply"]);
    assert_eq!(code, 0, "{again}{stderr}");
    assert!(!again.contains(" raised"), "{again}");
    assert_eq!(next(&pg, "app", "big_id_seq"), 2_147_483_648);
}
