//! Unit and property tests of every inference rule and tie-break, and the recall figure on
//! Sakila with its foreign keys dropped.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::*;
use crate::headroom::{IntType, Width};
use crate::inventory::ForeignKey;

mod shapes;

fn id(s: &str) -> ColumnId {
    let parts: Vec<&str> = s.split('.').collect();
    ColumnId::new(parts[0], parts[1], parts[2])
}

/// An inventory from `schema.table.column` names; `pk` marks a single-column primary key
/// (`+` also AUTO_INCREMENT): `"s.users.id pk+"`.
fn inventory(columns: &[&str]) -> Inventory {
    let mut inv = Inventory::default();
    for spec in columns {
        let mut words = spec.split_whitespace();
        let name = words.next().unwrap_or_default();
        let flag = words.next().unwrap_or("");
        let col = id(name);
        if flag.starts_with("pk") {
            inv.primary_keys
                .insert((col.schema.clone(), col.table.clone()), col.column.clone());
        }
        inv.columns.push(IntColumn {
            id: col,
            column_type: "bigint(20)".to_string(),
            int_type: IntType::new(Width::Big, false),
            auto_increment: flag.ends_with('+').then_some(1),
            sequence: None,
        });
    }
    inv
}

fn parents(inv: &Inventory) -> HashMap<String, (String, String)> {
    infer(inv, &Settings::default(), &[])
        .parents
        .into_iter()
        .map(|(k, v)| (k.to_string(), (v.parent.to_string(), v.evidence)))
        .collect()
}

fn parent_of(inv: &Inventory, column: &str) -> Option<String> {
    parents(inv).get(column).map(|(p, _)| p.clone())
}

#[test]
fn regular_english_plurals() {
    for (one, many) in [
        ("user", "users"),
        ("category", "categories"),
        ("address", "addresses"),
        ("box", "boxes"),
        ("match", "matches"),
        ("wish", "wishes"),
        ("status", "statuses"),
        ("quiz", "quizes"),
        ("day", "days"),
        ("key", "keys"),
        ("y", "ys"),
    ] {
        assert_eq!(plural(one), many, "{one}");
    }
}

#[test]
fn a_name_equal_to_another_tables_primary_key_names_that_table() {
    let inv = inventory(&[
        "etsy.listings.listing_id pk",
        "etsy.shops.shopid pk",
        "etsy.favorites.listing_id",
        "etsy.favorites.shopid",
    ]);
    let found = parents(&inv);
    assert_eq!(
        found["etsy.favorites.listing_id"],
        (
            "etsy.listings.listing_id".to_string(),
            "name equals the primary key of listings".to_string()
        )
    );
    assert_eq!(
        found["etsy.favorites.shopid"].0,
        "etsy.shops.shopid".to_string()
    );
    assert_eq!(found.len(), 2);
}

#[test]
fn rails_singular_id_names_the_plural_tables_id() {
    let inv = inventory(&[
        "app.users.id pk+",
        "app.categories.id pk+",
        "app.addresses.id pk+",
        "app.boxes.id pk+",
        "app.orders.id pk+",
        "app.orders.user_id",
        "app.orders.category_id",
        "app.orders.address_id",
        "app.orders.box_id",
    ]);
    let found = parents(&inv);
    assert_eq!(found["app.orders.user_id"].0, "app.users.id");
    assert_eq!(found["app.orders.user_id"].1, "rails: user_id -> users.id");
    assert_eq!(found["app.orders.category_id"].0, "app.categories.id");
    assert_eq!(found["app.orders.address_id"].0, "app.addresses.id");
    assert_eq!(found["app.orders.box_id"].0, "app.boxes.id");
    assert_eq!(found.len(), 4);
}

#[test]
fn role_prefixes_of_both_rules() {
    let inv = inventory(&[
        "app.users.id pk+",
        "app.shops.shopid pk",
        "app.posts.id pk+",
        "app.posts.author_user_id",
        "app.posts.last_editor_user_id",
        "app.posts.seller_shopid",
    ]);
    let found = parents(&inv);
    assert_eq!(found["app.posts.author_user_id"].0, "app.users.id");
    assert_eq!(
        found["app.posts.author_user_id"].1,
        "role prefix author_, rails: user_id -> users.id"
    );
    assert_eq!(found["app.posts.last_editor_user_id"].0, "app.users.id");
    assert_eq!(found["app.posts.seller_shopid"].0, "app.shops.shopid");
    assert_eq!(
        found["app.posts.seller_shopid"].1,
        "role prefix seller_, name equals the primary key of shops"
    );
}

#[test]
fn the_longest_matching_name_wins_over_a_shorter_tail() {
    let inv = inventory(&[
        "app.users.id pk+",
        "app.shop_users.id pk+",
        "app.x.shop_user_id",
    ]);
    assert_eq!(
        parent_of(&inv, "app.x.shop_user_id").as_deref(),
        Some("app.shop_users.id")
    );
}

#[test]
fn the_table_named_after_the_keys_stem_wins_over_an_extension_table() {
    let inv = inventory(&[
        "etsy.shops.shopid pk",
        "etsy.shop_settings.shopid pk",
        "etsy.listings.shopid",
    ]);
    assert_eq!(
        parent_of(&inv, "etsy.listings.shopid").as_deref(),
        Some("etsy.shops.shopid")
    );
    assert!(infer(&inv, &Settings::default(), &[]).ambiguous.is_empty());
}

#[test]
fn a_key_that_is_not_itself_a_reference_wins() {
    // Neither table is named after the stem `owner`: the AUTO_INCREMENT key that is no
    // declared foreign key is the parent.
    let mut inv = inventory(&[
        "s.accounts.owner_id pk+",
        "s.account_extras.owner_id pk",
        "s.x.owner_id",
    ]);
    inv.foreign_keys.push(ForeignKey {
        child: id("s.account_extras.owner_id"),
        parent: id("s.accounts.owner_id"),
    });
    assert_eq!(
        parent_of(&inv, "s.x.owner_id").as_deref(),
        Some("s.accounts.owner_id")
    );
}

#[test]
fn an_extension_tables_key_is_itself_a_reference() {
    // No AUTO_INCREMENT, no declared key, no table named after `owner`: `account_extras`
    // extends `accounts`, `category_extras` extends `categories`.
    let inv = inventory(&[
        "s.accounts.owner_id pk",
        "s.account_extras.owner_id pk",
        "s.x.owner_id",
        "s.categories.cat_key_id pk",
        "s.category_extras.cat_key_id pk",
        "s.y.cat_key_id",
    ]);
    let found = parents(&inv);
    assert_eq!(found["s.x.owner_id"].0, "s.accounts.owner_id");
    assert_eq!(found["s.y.cat_key_id"].0, "s.categories.cat_key_id");
    assert!(extends("shop_settings", "shops"));
    assert!(!extends("shopping", "shops"));
    assert!(!extends("shops", "shops_archive"));
}

#[test]
fn an_auto_increment_key_wins_when_nothing_else_tells() {
    let inv = inventory(&["s.a.owner_id pk+", "s.b.owner_id pk", "s.x.owner_id"]);
    assert_eq!(
        parent_of(&inv, "s.x.owner_id").as_deref(),
        Some("s.a.owner_id")
    );
}

#[test]
fn the_same_schema_comes_before_other_watched_schemas() {
    let inv = inventory(&["a.users.id pk+", "b.users.id pk+", "b.orders.user_id"]);
    assert_eq!(
        parent_of(&inv, "b.orders.user_id").as_deref(),
        Some("b.users.id")
    );
    let inv = inventory(&["a.users.id pk+", "b.orders.user_id"]);
    assert_eq!(
        parent_of(&inv, "b.orders.user_id").as_deref(),
        Some("a.users.id")
    );
}

#[test]
fn equally_good_parents_are_listed_as_ambiguous_and_not_guessed() {
    let inv = inventory(&["a.users.id pk", "b.users.id pk", "c.orders.user_id"]);
    let inference = infer(&inv, &Settings::default(), &[]);
    assert!(inference.parents.is_empty());
    assert_eq!(
        inference.ambiguous,
        vec![Ambiguous {
            column: "c.orders.user_id".to_string(),
            candidates: vec!["a.users.id".to_string(), "b.users.id".to_string()],
        }]
    );
}

#[test]
fn counters_flags_prices_and_keys_never_match() {
    let inv = inventory(&[
        "s.counts.count pk",
        "s.prices.price pk",
        "s.flags.is_active pk",
        "s.users.id pk+",
        "s.users.user_id",
        "s.x.count",
        "s.x.price",
        "s.x.is_active",
        "s.x.user_count",
        "s.x.quantity",
        "s.x.id",
        "s.x.paid",
    ]);
    let found = parents(&inv);
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        vec!["s.users.user_id"],
        "only a self-reference by name: {found:?}"
    );
    for name in [
        "count",
        "is_active",
        "price",
        "user_count",
        "items_total",
        "num_id",
    ] {
        assert!(looks_like_a_value(name), "{name}");
    }
}

#[test]
fn a_tables_own_primary_key_auto_increment_and_declared_children_are_left_alone() {
    let mut inv = inventory(&[
        "s.users.id pk+",
        "s.shops.shop_id pk",
        "s.orders.user_id",
        "s.orders.serial_user_id +",
    ]);
    inv.foreign_keys.push(ForeignKey {
        child: id("s.orders.user_id"),
        parent: id("s.users.id"),
    });
    assert!(parents(&inv).is_empty());
}

#[test]
fn columns_a_reference_rule_covers_are_not_inferred() {
    let inv = inventory(&["s.users.id pk+", "s.orders.user_id"]);
    let rule = ReferenceRule::new("t", &["s.*.user_id".to_string()], &[]).expect("rule");
    assert!(
        infer(&inv, &Settings::default(), &[rule])
            .parents
            .is_empty()
    );
}

#[test]
fn disabled_inference_finds_nothing() {
    let inv = inventory(&["s.users.id pk+", "s.orders.user_id"]);
    let off = Settings {
        enabled: false,
        rules: Vec::new(),
    };
    assert!(infer(&inv, &off, &[]).parents.is_empty());
}

#[test]
fn a_template_rule_finds_mediawiki_references() {
    let inv = inventory(&[
        "wiki.page.page_id pk+",
        "wiki.revision.rev_id pk+",
        "wiki.revision.rev_page",
        "wiki.revision.rev_len",
    ]);
    let rule = Template::new("{prefix}_{table}", "{table}.{table}_id").expect("template");
    let settings = Settings {
        enabled: true,
        rules: vec![rule],
    };
    let inference = infer(&inv, &settings, &[]);
    let found = &inference.parents[&id("wiki.revision.rev_page")];
    assert_eq!(found.parent, id("wiki.page.page_id"));
    assert_eq!(found.evidence, "rule 0: {prefix}_{table}");
    assert_eq!(inference.parents.len(), 1, "rev_len: no table `len`");
}

#[test]
fn a_template_with_a_schema_names_that_schema_only() {
    let inv = inventory(&["core.page.page_id pk+", "wiki.revision.rev_page"]);
    let rule = Template::new("rev_{table}", "core.{table}.{table}_id").expect("template");
    let settings = Settings {
        enabled: true,
        rules: vec![rule],
    };
    let inference = infer(&inv, &settings, &[]);
    assert_eq!(
        inference.parents[&id("wiki.revision.rev_page")].parent,
        id("core.page.page_id")
    );
}

#[test]
fn bad_templates_are_refused_with_the_key_and_the_reason() {
    let cases = [
        (
            "{prefix}_page",
            "{table}.id",
            "column",
            "{table} exactly once",
        ),
        (
            "{table}_{table}",
            "{table}.id",
            "column",
            "{table} exactly once",
        ),
        (
            "{prefix}{table}",
            "{table}.id",
            "column",
            "separated by literal text",
        ),
        (
            "{prefix}_{tabel}",
            "{table}.id",
            "column",
            "unknown placeholder {tabel}",
        ),
        ("{table", "{table}.id", "column", "without a closing"),
        (
            "x_{table}",
            "{table}",
            "parent",
            "table.column or schema.table.column",
        ),
        (
            "x_{table}",
            "{prefix}.{table}.id",
            "parent",
            "does not bind",
        ),
        ("x_{table}", "a.b.c.d", "parent", "table.column"),
        ("x_{table}", "{table}}.id", "parent", "without an opening"),
    ];
    for (column, parent, key, message) in cases {
        let (got_key, got) = Template::new(column, parent).expect_err(column);
        assert_eq!(got_key, key, "{column} / {parent}");
        assert!(got.contains(message), "{column} / {parent}: {got}");
    }
}

#[test]
fn hostile_names_are_matched_literally() {
    let inv = inventory(&[
        "s.{table}s.id pk+",
        "s.x.{table}_id",
        "s.`q`.`q`_id pk",
        "s.y.`q`_id",
    ]);
    let found = parents(&inv);
    assert_eq!(found["s.x.{table}_id"].0, "s.{table}s.id");
    assert_eq!(found["s.y.`q`_id"].0, "s.`q`.`q`_id");
}

/// Sakila (MySQL's sample database), every integer column and single-column primary key,
/// its 22 declared foreign keys dropped.
const SAKILA: &[&str] = &[
    "sakila.actor.actor_id pk+",
    "sakila.address.address_id pk+",
    "sakila.address.city_id",
    "sakila.category.category_id pk+",
    "sakila.city.city_id pk+",
    "sakila.city.country_id",
    "sakila.country.country_id pk+",
    "sakila.customer.customer_id pk+",
    "sakila.customer.store_id",
    "sakila.customer.address_id",
    "sakila.customer.active",
    "sakila.film.film_id pk+",
    "sakila.film.language_id",
    "sakila.film.original_language_id",
    "sakila.film.rental_duration",
    "sakila.film.length",
    "sakila.film_actor.actor_id",
    "sakila.film_actor.film_id",
    "sakila.film_category.film_id",
    "sakila.film_category.category_id",
    "sakila.film_text.film_id pk",
    "sakila.inventory.inventory_id pk+",
    "sakila.inventory.film_id",
    "sakila.inventory.store_id",
    "sakila.language.language_id pk+",
    "sakila.payment.payment_id pk+",
    "sakila.payment.customer_id",
    "sakila.payment.staff_id",
    "sakila.payment.rental_id",
    "sakila.rental.rental_id pk+",
    "sakila.rental.inventory_id",
    "sakila.rental.customer_id",
    "sakila.rental.staff_id",
    "sakila.staff.staff_id pk+",
    "sakila.staff.address_id",
    "sakila.staff.store_id",
    "sakila.staff.active",
    "sakila.store.store_id pk+",
    "sakila.store.manager_staff_id",
    "sakila.store.address_id",
];

/// Sakila's declared foreign keys, child → parent.
const SAKILA_FKS: &[(&str, &str)] = &[
    ("address.city_id", "city.city_id"),
    ("city.country_id", "country.country_id"),
    ("customer.store_id", "store.store_id"),
    ("customer.address_id", "address.address_id"),
    ("film.language_id", "language.language_id"),
    ("film.original_language_id", "language.language_id"),
    ("film_actor.actor_id", "actor.actor_id"),
    ("film_actor.film_id", "film.film_id"),
    ("film_category.film_id", "film.film_id"),
    ("film_category.category_id", "category.category_id"),
    ("inventory.film_id", "film.film_id"),
    ("inventory.store_id", "store.store_id"),
    ("payment.customer_id", "customer.customer_id"),
    ("payment.staff_id", "staff.staff_id"),
    ("payment.rental_id", "rental.rental_id"),
    ("rental.inventory_id", "inventory.inventory_id"),
    ("rental.customer_id", "customer.customer_id"),
    ("rental.staff_id", "staff.staff_id"),
    ("staff.address_id", "address.address_id"),
    ("staff.store_id", "store.store_id"),
    ("store.manager_staff_id", "staff.staff_id"),
    ("store.address_id", "address.address_id"),
];

#[test]
fn sakila_without_its_foreign_keys_recovers_every_one_and_guesses_its_one_to_one_table() {
    let inference = infer(&inventory(SAKILA), &Settings::default(), &[]);
    let found: HashMap<String, String> = inference
        .parents
        .iter()
        .map(|(k, v)| (k.to_string(), v.parent.to_string()))
        .collect();
    let (mut recovered, mut wrong) = (0, 0);
    for (child, parent) in SAKILA_FKS {
        match found.get(&format!("sakila.{child}")) {
            Some(p) if *p == format!("sakila.{parent}") => recovered += 1,
            Some(_) => wrong += 1,
            None => {}
        }
    }
    let declared: HashSet<String> = SAKILA_FKS
        .iter()
        .map(|(c, _)| format!("sakila.{c}"))
        .collect();
    let extra = found.keys().filter(|k| !declared.contains(*k)).count();
    println!(
        "sakila: {} foreign keys, {recovered} recovered, {wrong} wrong parents, {extra} extra",
        SAKILA_FKS.len()
    );
    assert_eq!(SAKILA_FKS.len(), 22);
    assert!(recovered * 100 >= SAKILA_FKS.len() * 80, "{recovered}");
    assert!(
        (wrong + extra) * 100 <= SAKILA_FKS.len() * 5,
        "{wrong} + {extra}"
    );
    assert_eq!((recovered, wrong, extra), (22, 0, 1));
    // The one guess beyond the declared keys is true: film_text holds one row per film,
    // kept by triggers, with no foreign key.
    let text = &inference.parents[&id("sakila.film_text.film_id")];
    assert_eq!(text.parent, id("sakila.film.film_id"));
    assert_eq!(
        text.evidence,
        "shared primary key, name equals the primary key of film"
    );
    assert!(inference.ambiguous.is_empty(), "{:?}", inference.ambiguous);
}
