//! The plan, resolution, the report step and dives on hand-built inventories.

use super::*;
use crate::growth::Tracker;
use crate::headroom::{IntType, Width};
use crate::inventory::{ForeignKey, IntColumn};
use crate::policy::Policy;

fn col(id: &str, width: Width, unsigned: bool, auto: Option<i128>) -> IntColumn {
    let parts: Vec<&str> = id.split('.').collect();
    IntColumn {
        id: ColumnId::new(parts[0], parts[1], parts[2]),
        column_type: format!(
            "{}{}",
            width.sql_name(),
            if unsigned { " unsigned" } else { "" }
        ),
        int_type: IntType::new(width, unsigned),
        auto_increment: auto,
        sequence: None,
    }
}

fn id(s: &str) -> ColumnId {
    let parts: Vec<&str> = s.split('.').collect();
    ColumnId::new(parts[0], parts[1], parts[2])
}

fn fk(child: &str, parent: &str) -> ForeignKey {
    ForeignKey {
        child: id(child),
        parent: id(parent),
    }
}

/// `child` guessed to reference `parent`, by the rule `evidence`.
fn guessed(child: &str, parent: &str, evidence: &str) -> HashMap<ColumnId, Inferred> {
    HashMap::from([(
        id(child),
        Inferred {
            parent: id(parent),
            evidence: evidence.to_string(),
        },
    )])
}

fn tickets(current: i128) -> HashMap<String, SourceValue> {
    HashMap::from([(
        "tickets64".to_string(),
        SourceValue {
            current,
            max: u64::MAX,
        },
    )])
}

fn rules() -> Vec<ReferenceRule> {
    vec![
        ReferenceRule::new(
            "tickets64",
            &["etsy.*.*_id".to_string()],
            &["etsy.teams.*".to_string()],
        )
        .unwrap(),
    ]
}

fn by_name(measured: &[Measured]) -> HashMap<String, Measured> {
    measured
        .iter()
        .map(|m| (m.id.to_string(), m.clone()))
        .collect()
}

#[test]
fn reference_columns_take_the_source_or_their_own_max_whichever_is_larger() {
    let inventory = Inventory {
        columns: vec![
            col("etsy.comments.treasury_id", Width::Int, true, None),
            col("etsy.feed.treasury_id", Width::Int, false, None),
            col("etsy.teams.team_id", Width::Int, false, None),
            col("etsy.comments.likes", Width::Int, false, None),
        ],
        foreign_keys: vec![],
        leading: HashSet::from([id("etsy.comments.treasury_id"), id("etsy.feed.treasury_id")]),
        primary_keys: HashMap::new(),
    };
    let plan = plan(&inventory, &rules());
    assert_eq!(plan.len(), 2, "teams excluded, likes is not an ID column");
    assert_eq!(plan.dives.len(), 2);
    let dives = HashMap::from([
        (id("etsy.comments.treasury_id"), Some(10)),
        (id("etsy.feed.treasury_id"), Some(3_000_000_000)),
    ]);
    let (measured, unresolved) = resolve(&plan, &dives, &tickets(2_147_483_648 + 100));
    assert!(unresolved.is_empty());
    let m = by_name(&measured);
    let comments = &m["etsy.comments.treasury_id"];
    assert_eq!(comments.kind, Kind::Reference);
    assert_eq!(comments.headroom.current, 2_147_483_748);
    assert!(comments.type_mismatch);
    assert_eq!(comments.source.as_deref(), Some("tickets64"));
    assert_eq!(m["etsy.feed.treasury_id"].headroom.current, 3_000_000_000);
}

#[test]
fn a_reference_column_that_leads_no_index_is_never_dived() {
    let inventory = Inventory {
        columns: vec![col("etsy.log.user_id", Width::Int, false, None)],
        foreign_keys: vec![],
        leading: HashSet::new(),
        primary_keys: HashMap::new(),
    };
    let plan = plan(&inventory, &rules());
    assert!(plan.dives.is_empty());
    let (measured, _) = resolve(&plan, &HashMap::new(), &tickets(42));
    assert_eq!(measured[0].headroom.current, 42);
}

#[test]
fn foreign_key_chains_resolve_to_the_root_counter() {
    let inventory = Inventory {
        columns: vec![
            col("shop.users.id", Width::Big, true, Some(5_000)),
            col("shop.orders.id", Width::Int, false, Some(10)),
            col("shop.orders.user_ref", Width::Big, true, None),
            col("shop.notes.order_user", Width::Int, true, None),
        ],
        foreign_keys: vec![
            fk("shop.orders.user_ref", "shop.users.id"),
            fk("shop.notes.order_user", "shop.orders.user_ref"),
        ],
        leading: HashSet::from([id("shop.orders.user_ref"), id("shop.notes.order_user")]),
        primary_keys: HashMap::new(),
    };
    let plan = plan(&inventory, &[]);
    assert!(
        plan.dives.is_empty(),
        "every parent is measured: no MAX needed"
    );
    let (measured, _) = resolve(&plan, &HashMap::new(), &HashMap::new());
    let m = by_name(&measured);
    assert_eq!(m["shop.orders.user_ref"].headroom.current, 5_000);
    assert_eq!(m["shop.notes.order_user"].headroom.current, 5_000);
    assert_eq!(
        m["shop.notes.order_user"].source.as_deref(),
        Some("shop.orders.user_ref")
    );
    assert!(
        m["shop.notes.order_user"].type_mismatch,
        "INT UNSIGNED below BIGINT UNSIGNED"
    );
    assert_eq!(m["shop.users.id"].kind, Kind::AutoIncrement);
}

#[test]
fn a_foreign_key_to_an_unmeasured_parent_reads_the_parents_max() {
    let inventory = Inventory {
        columns: vec![
            col("s.codes.code", Width::Small, false, None),
            col("s.items.code", Width::Small, false, None),
        ],
        foreign_keys: vec![fk("s.items.code", "s.codes.code")],
        leading: HashSet::from([id("s.codes.code"), id("s.items.code")]),
        primary_keys: HashMap::new(),
    };
    let plan = plan(&inventory, &[]);
    assert_eq!(plan.dives, vec![id("s.codes.code")]);
    let dives = HashMap::from([(id("s.codes.code"), Some(30_000))]);
    let (measured, _) = resolve(&plan, &dives, &HashMap::new());
    assert_eq!(measured.len(), 1);
    assert_eq!(measured[0].headroom.current, 30_000);
    assert!(!measured[0].type_mismatch);
}

#[test]
fn a_foreign_key_cycle_does_not_loop() {
    let inventory = Inventory {
        columns: vec![
            col("s.a.x", Width::Int, false, None),
            col("s.b.y", Width::Int, false, None),
        ],
        foreign_keys: vec![fk("s.a.x", "s.b.y"), fk("s.b.y", "s.a.x")],
        leading: HashSet::new(),
        primary_keys: HashMap::new(),
    };
    let plan = plan(&inventory, &[]);
    let (measured, unresolved) = resolve(&plan, &HashMap::new(), &HashMap::new());
    assert!(measured.is_empty());
    assert_eq!(unresolved.len(), 2);
}

#[test]
fn a_reference_without_source_value_or_index_is_unresolved() {
    let inventory = Inventory {
        columns: vec![col("etsy.x.user_id", Width::Int, false, None)],
        ..Inventory::default()
    };
    let plan = plan(&inventory, &rules());
    let (measured, unresolved) = resolve(&plan, &HashMap::new(), &HashMap::new());
    assert!(measured.is_empty());
    assert!(unresolved[0].reason.contains("tickets64"));
}

#[test]
fn a_declared_foreign_key_wins_over_a_matching_reference_rule() {
    let inventory = Inventory {
        columns: vec![
            col("etsy.comments.id", Width::Int, false, Some(500)),
            col("etsy.likes.comment_id", Width::Int, false, None),
        ],
        foreign_keys: vec![fk("etsy.likes.comment_id", "etsy.comments.id")],
        leading: HashSet::from([id("etsy.likes.comment_id")]),
        primary_keys: HashMap::new(),
    };
    let plan = plan(&inventory, &rules());
    let (measured, _) = resolve(&plan, &HashMap::new(), &tickets(3_000_000_000));
    let m = by_name(&measured);
    assert_eq!(m["etsy.likes.comment_id"].kind, Kind::ForeignKey);
    assert_eq!(m["etsy.likes.comment_id"].headroom.current, 500);
}

#[test]
fn auto_increment_wins_over_a_matching_reference_rule() {
    let inventory = Inventory {
        columns: vec![col("etsy.shops.shop_id", Width::Int, true, Some(77))],
        ..Inventory::default()
    };
    let plan = plan(&inventory, &rules());
    let (measured, _) = resolve(&plan, &HashMap::new(), &tickets(1_000));
    assert_eq!(measured[0].kind, Kind::AutoIncrement);
    assert_eq!(measured[0].headroom.current, 77);
}

/// A poll's moment, `minutes` after `start` on both clocks.
fn moment(start: Moment, minutes: u32) -> Moment {
    let after = std::time::Duration::from_secs(60) * minutes;
    Moment {
        instant: start.instant + after,
        wall: start.wall + chrono::TimeDelta::from_std(after).unwrap(),
    }
}

fn policy() -> Policy {
    crate::config::testing::settings("").policy
}

#[tokio::test(start_paused = true)]
async fn a_column_not_dived_keeps_its_value_and_observed_at_and_adds_no_growth_sample() {
    let inventory = Inventory {
        columns: vec![col("etsy.feed.user_id", Width::Int, false, None)],
        foreign_keys: vec![],
        leading: HashSet::from([id("etsy.feed.user_id")]),
        ..Inventory::default()
    };
    let plan = plan(&inventory, &rules());
    let (policy, sources) = (policy(), tickets(10));
    let start = Moment {
        instant: tokio::time::Instant::now(),
        wall: "2026-11-22T06:00:00Z".parse().unwrap(),
    };
    let mut growth = Tracker::default();
    let mut dives = HashMap::new();
    let mut poll = |minute: u32, dived: Option<i128>| {
        let at = moment(start, minute);
        if let Some(value) = dived {
            let value = Some(value);
            dives.insert(id("etsy.feed.user_id"), Dive { value, at });
        }
        let (mut reports, _) = report_dives("s", &plan, &dives, &sources, &mut growth, &policy, at);
        reports.remove(0)
    };
    poll(0, Some(1_000));
    let read = poll(1, Some(1_600));
    assert_eq!(read.growth_per_second, Some(10.0));
    let held = poll(2, None);
    assert_eq!(held.current, 1_600);
    assert_eq!(held.observed_at, moment(start, 1).wall);
    assert_eq!(held.seconds_to_exhaustion, read.seconds_to_exhaustion);
    assert_eq!(held.exhausts_at(), read.exhausts_at());
    // Samples at minutes 0, 1 and 3 only: 10 IDs a second exactly. A repeated 1,600 at
    // minute 2 would have bent the least-squares slope below it.
    let again = poll(3, Some(2_800));
    assert_eq!(again.observed_at, moment(start, 3).wall);
    let rate = again.growth_per_second.unwrap();
    assert!((rate - 10.0).abs() < 1e-9, "{rate}");
}

#[test]
fn a_reference_whose_source_passes_its_held_max_is_read_at_this_poll() {
    let inventory = Inventory {
        columns: vec![col("etsy.feed.user_id", Width::Big, false, None)],
        foreign_keys: vec![],
        leading: HashSet::from([id("etsy.feed.user_id")]),
        ..Inventory::default()
    };
    let plan = plan(&inventory, &rules());
    let start = Moment {
        instant: tokio::time::Instant::now(),
        wall: "2026-11-22T06:00:00Z".parse().unwrap(),
    };
    let dives = HashMap::from([(
        id("etsy.feed.user_id"),
        Dive {
            value: Some(1_600),
            at: start,
        },
    )]);
    let now = moment(start, 5);
    let mut growth = Tracker::default();
    let policy = policy();
    let (ahead, _) = report_dives(
        "s",
        &plan,
        &dives,
        &tickets(5_000),
        &mut growth,
        &policy,
        now,
    );
    assert_eq!(ahead[0].current, 5_000);
    assert_eq!(ahead[0].observed_at, now.wall);
    let (behind, _) = report_dives("s", &plan, &dives, &tickets(9), &mut growth, &policy, now);
    assert_eq!(behind[0].current, 1_600);
    assert_eq!(behind[0].observed_at, start.wall);
}

#[test]
fn the_dives_of_a_column_follow_its_foreign_keys() {
    let inventory = Inventory {
        columns: vec![
            col("etsy.feed.user_id", Width::Int, false, None),
            col("etsy.likes.feed_user", Width::Small, false, None),
            col("s.codes.code", Width::Small, false, None),
            col("s.items.code", Width::Small, false, None),
            col("s.items.id", Width::Int, false, Some(4)),
        ],
        foreign_keys: vec![
            fk("etsy.likes.feed_user", "etsy.feed.user_id"),
            fk("s.items.code", "s.codes.code"),
        ],
        leading: HashSet::from([id("etsy.feed.user_id"), id("s.codes.code")]),
        ..Inventory::default()
    };
    let plan = plan(&inventory, &rules());
    assert_eq!(
        plan.dives,
        vec![id("etsy.feed.user_id"), id("s.codes.code")]
    );
    let of = |names: &[&str]| dives_of(&plan, &names.iter().map(|n| id(n)).collect());
    assert_eq!(
        of(&["etsy.likes.feed_user"]),
        HashSet::from([id("etsy.feed.user_id")])
    );
    assert_eq!(of(&["s.items.code"]), HashSet::from([id("s.codes.code")]));
    assert_eq!(of(&["s.items.id"]), HashSet::new());
    assert_eq!(of(&[]), HashSet::new());
}

#[test]
fn an_inferred_column_is_bound_by_its_parent_and_carries_the_evidence() {
    let inventory = Inventory {
        columns: vec![
            col("gh.repos.id", Width::Big, false, Some(2_147_483_700)),
            col("gh.stars.repo_id", Width::Int, false, None),
        ],
        ..Inventory::default()
    };
    let inferred = guessed(
        "gh.stars.repo_id",
        "gh.repos.id",
        "rails: repo_id -> repos.id",
    );
    let plan = plan_with(&inventory, &[], &inferred);
    assert!(plan.dives.is_empty(), "the parent is measured");
    let (measured, _) = resolve(&plan, &HashMap::new(), &HashMap::new());
    let m = by_name(&measured);
    let stars = &m["gh.stars.repo_id"];
    assert_eq!(stars.kind, Kind::Inferred);
    assert_eq!(stars.headroom.current, 2_147_483_700);
    assert!(stars.type_mismatch);
    assert_eq!(stars.source.as_deref(), Some("gh.repos.id"));
    assert_eq!(
        stars.evidence.as_deref(),
        Some("rails: repo_id -> repos.id")
    );
    assert_eq!(m["gh.repos.id"].evidence, None);
}

#[test]
fn a_reference_rule_wins_over_an_inferred_parent() {
    let inventory = Inventory {
        columns: vec![
            col("etsy.users.id", Width::Big, false, Some(9)),
            col("etsy.x.user_id", Width::Big, false, None),
        ],
        ..Inventory::default()
    };
    let inferred = guessed(
        "etsy.x.user_id",
        "etsy.users.id",
        "rails: user_id -> users.id",
    );
    let plan = plan_with(&inventory, &rules(), &inferred);
    let (measured, _) = resolve(&plan, &HashMap::new(), &tickets(1_000));
    assert_eq!(by_name(&measured)["etsy.x.user_id"].kind, Kind::Reference);
}

#[test]
fn the_child_of_a_descending_sequence_holds_one_more_going_down() {
    // A parent counted down to the integer minimum (-2^31: 2^31 handed out), and its
    // children: an integer one holds it, a smallint one cannot.
    let mut parent = col("app.parents.id", Width::Int, false, None);
    parent.sequence = Some(std::sync::Arc::new(crate::inventory::Sequence {
        name: "app.down".into(),
        handed_out: Ok(2_147_483_648),
        limit: 2_147_483_648,
        descending: true,
        cycle: false,
    }));
    let inventory = Inventory {
        columns: vec![
            parent,
            col("app.children.parent_id", Width::Int, false, None),
            col("app.small.parent_id", Width::Small, false, None),
            col("app.grandchildren.child_id", Width::Big, false, None),
        ],
        foreign_keys: vec![
            fk("app.children.parent_id", "app.parents.id"),
            fk("app.small.parent_id", "app.parents.id"),
            fk("app.grandchildren.child_id", "app.children.parent_id"),
        ],
        leading: HashSet::new(),
        primary_keys: HashMap::new(),
    };
    let (measured, _) = resolve(&plan(&inventory, &[]), &HashMap::new(), &HashMap::new());
    let m = by_name(&measured);
    let at = |name: &str| {
        let c = &m[name];
        (
            c.headroom.current,
            c.headroom.max,
            c.headroom.status(crate::policy::Limits::default().ratio),
            c.type_mismatch,
        )
    };
    use crate::headroom::Status;
    assert_eq!(
        at("app.parents.id"),
        (2_147_483_648, 2_147_483_648, Status::Critical, false)
    );
    assert_eq!(
        at("app.children.parent_id"),
        (2_147_483_648, 2_147_483_648, Status::Critical, false)
    );
    assert_eq!(
        at("app.small.parent_id"),
        (2_147_483_648, 32_768, Status::Exhausted, true)
    );
    // Down a chain, in the root's direction.
    assert_eq!(
        at("app.grandchildren.child_id"),
        (2_147_483_648, 9_223_372_036_854_775_808, Status::Ok, false)
    );
}

#[test]
fn the_child_of_an_unreadable_sequence_reads_its_own_max_where_it_leads_an_index() {
    // A parent whose sequence the monitor may not read; a child that leads an index (an
    // extension table's key), its own child, and a child that leads none.
    let mut parent = col("app.parents.id", Width::Int, false, None);
    parent.sequence = Some(std::sync::Arc::new(crate::inventory::Sequence {
        name: "app.secret".into(),
        handed_out: Err("the monitoring user may not read it".to_string()),
        limit: 2_147_483_647,
        descending: false,
        cycle: false,
    }));
    let inventory = Inventory {
        columns: vec![
            parent,
            col("app.extensions.parent_id", Width::Int, false, None),
            col("app.notes.extension_id", Width::Big, false, None),
            col("app.loose.parent_id", Width::Int, false, None),
        ],
        foreign_keys: vec![
            fk("app.extensions.parent_id", "app.parents.id"),
            fk("app.notes.extension_id", "app.extensions.parent_id"),
            fk("app.loose.parent_id", "app.parents.id"),
        ],
        leading: HashSet::from([id("app.parents.id"), id("app.extensions.parent_id")]),
        primary_keys: HashMap::new(),
    };
    let plan = plan(&inventory, &[]);
    assert_eq!(plan.dives, vec![id("app.extensions.parent_id")]);
    let dives = HashMap::from([(id("app.extensions.parent_id"), Some(41))]);
    let (measured, unresolved) = resolve(&plan, &dives, &HashMap::new());
    let m = by_name(&measured);
    assert_eq!(m["app.extensions.parent_id"].headroom.current, 41);
    assert_eq!(m["app.notes.extension_id"].headroom.current, 41);
    let reasons: Vec<String> = unresolved
        .iter()
        .map(|u| format!("{}: {}", u.id, u.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            "app.parents.id: sequence app.secret: the monitoring user may not read it",
            "app.loose.parent_id: parent app.parents.id has no known value and neither \
             column leads an index"
        ]
    );
}
