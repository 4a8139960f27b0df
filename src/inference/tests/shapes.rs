//! The shapes of real schemas: shared primary keys, role suffixes, number keys, chains
//! and pins.

use super::*;

#[test]
fn a_shared_primary_key_extends_the_table_named_after_its_stem() {
    let inv = inventory(&[
        "shop.users.user_id pk+",
        "shop.user_profiles.user_id pk",
        "shop.orders.order_id pk+",
        "shop.order_details.order_id pk",
        "shop.invoice.invoiceid pk+",
        "shop.invoice_totals.invoiceid pk",
        "shop.accounts.id pk+",
        "shop.account_extras.account_id pk",
    ]);
    let found = parents(&inv);
    assert_eq!(
        found["shop.user_profiles.user_id"],
        (
            "shop.users.user_id".to_string(),
            "shared primary key, name equals the primary key of users".to_string()
        )
    );
    assert_eq!(
        found["shop.order_details.order_id"].0,
        "shop.orders.order_id"
    );
    assert_eq!(
        found["shop.invoice_totals.invoiceid"].0,
        "shop.invoice.invoiceid"
    );
    assert_eq!(
        found["shop.account_extras.account_id"],
        (
            "shop.accounts.id".to_string(),
            "shared primary key, rails: account_id -> accounts.id".to_string()
        )
    );
    // The roots are their own tables' keys and AUTO_INCREMENT: never children.
    assert_eq!(found.len(), 4, "{found:?}");
}

#[test]
fn a_primary_key_with_no_stem_named_table_is_not_guessed() {
    // `profiles.owner_id` and `settings.owner_id` share a name but no table is `owner(s)`;
    // `users.user_id` is the stem table itself; `tag_names.tag_id` extends `tags`.
    let inv = inventory(&[
        "s.profiles.owner_id pk",
        "s.settings.owner_id pk",
        "s.users.user_id pk",
        "s.tags.tag_id pk",
        "s.tag_names.tag_id pk",
    ]);
    let inference = infer(&inv, &Settings::default(), &[]);
    let found: Vec<String> = inference.parents.keys().map(|k| k.to_string()).collect();
    assert_eq!(found, vec!["s.tag_names.tag_id".to_string()]);
    assert!(inference.ambiguous.is_empty(), "{:?}", inference.ambiguous);
}

#[test]
fn several_extension_tables_of_one_key_leave_the_stem_table_the_parent() {
    let inv = inventory(&[
        "bill.invoice.invoiceid pk+",
        "bill.invoice_totals.invoiceid pk",
        "bill.invoice_notes.invoiceid pk",
        "bill.payments.invoiceid",
    ]);
    let inference = infer(&inv, &Settings::default(), &[]);
    assert!(inference.ambiguous.is_empty(), "{:?}", inference.ambiguous);
    let payment = id("bill.payments.invoiceid");
    assert_eq!(
        inference.parents[&payment].parent,
        id("bill.invoice.invoiceid")
    );
    assert_eq!(
        inference.parents[&payment].evidence,
        "name equals the primary key of invoice"
    );
    let runners: Vec<(String, &str)> = inference.runners_up[&payment]
        .iter()
        .map(|r| (r.parent.to_string(), r.passed_over))
        .collect();
    assert_eq!(
        runners,
        vec![
            (
                "bill.invoice_notes.invoiceid".to_string(),
                "not named after the key's stem"
            ),
            (
                "bill.invoice_totals.invoiceid".to_string(),
                "not named after the key's stem"
            ),
        ]
    );
    for extension in [
        "bill.invoice_totals.invoiceid",
        "bill.invoice_notes.invoiceid",
    ] {
        assert_eq!(
            inference.parents[&id(extension)].parent,
            id("bill.invoice.invoiceid"),
            "{extension}"
        );
    }
}

#[test]
fn role_suffixes_after_the_key_name_are_cut_off() {
    let inv = inventory(&[
        "geo.locations.locationid pk+",
        "geo.accounts.id pk+",
        "geo.photos.photo_id pk+",
        "geo.skewed_string_list.string_list_id pk",
        "geo.moves.locationid_from",
        "geo.moves.locationid_to",
        "geo.transfers.account_id1",
        "geo.transfers.account_id_2",
        "geo.albums.photo_id_large",
        "geo.albums.cover_photo_id_small",
        "geo.skewed.string_list_id_kid",
    ]);
    let found = parents(&inv);
    assert_eq!(
        found["geo.moves.locationid_from"],
        (
            "geo.locations.locationid".to_string(),
            "role suffix _from, name equals the primary key of locations".to_string()
        )
    );
    assert_eq!(
        found["geo.moves.locationid_to"].0,
        "geo.locations.locationid"
    );
    assert_eq!(
        found["geo.transfers.account_id1"],
        (
            "geo.accounts.id".to_string(),
            "role suffix 1, rails: account_id -> accounts.id".to_string()
        )
    );
    assert_eq!(found["geo.transfers.account_id_2"].0, "geo.accounts.id");
    assert_eq!(found["geo.albums.photo_id_large"].0, "geo.photos.photo_id");
    assert_eq!(
        found["geo.albums.cover_photo_id_small"].1,
        "role prefix cover_, role suffix _small, name equals the primary key of photos"
    );
    assert_eq!(
        found["geo.skewed.string_list_id_kid"].0,
        "geo.skewed_string_list.string_list_id"
    );
    assert_eq!(found.len(), 7, "{found:?}");
}

#[test]
fn role_suffixes_never_make_a_counter_a_date_or_a_key_copy_a_reference() {
    let inv = inventory(&[
        "s.users.user_id pk+",
        "s.x.user_id_count",
        "s.x.user_id_total",
        "s.x.valid_from",
        "s.x.paid_2",
        "s.x.id_2",
        "s.x.user_id_",
        "s.x.user_idx",
    ]);
    assert!(parents(&inv).is_empty(), "{:?}", parents(&inv));
    assert_eq!(role_suffix("locationid_from"), Some(10));
    assert_eq!(role_suffix("account_id12"), Some(10));
    assert_eq!(role_suffix("account_id_2"), Some(10));
    assert_eq!(role_suffix("user_id"), None);
    assert_eq!(role_suffix("id_2"), None);
    assert_eq!(role_suffix("é_id_x"), Some(5));
}

#[test]
fn a_number_key_is_matched_by_the_primary_key_rule_only() {
    // MySQL's employees sample: `emp_no` everywhere, the key of `employees`.
    let inv = inventory(&[
        "hr.employees.emp_no pk",
        "hr.titles.emp_no",
        "hr.salaries.emp_no",
        "hr.dept_manager.manager_emp_no",
        "hr.orders.order_no",
        "hr.x.serial_no",
    ]);
    let found = parents(&inv);
    assert_eq!(
        found["hr.titles.emp_no"],
        (
            "hr.employees.emp_no".to_string(),
            "name equals the primary key of employees".to_string()
        )
    );
    assert_eq!(found["hr.salaries.emp_no"].0, "hr.employees.emp_no");
    assert_eq!(
        found["hr.dept_manager.manager_emp_no"].0,
        "hr.employees.emp_no"
    );
    assert_eq!(
        found.len(),
        3,
        "no table has order_no or serial_no as key: {found:?}"
    );
}

#[test]
fn self_references_by_role_prefix_keep_working() {
    let inv = inventory(&[
        "s.categories.category_id pk+",
        "s.categories.parent_category_id",
        "s.employees.employee_id pk+",
        "s.employees.employee_id_manager",
    ]);
    let found = parents(&inv);
    assert_eq!(
        found["s.categories.parent_category_id"].0,
        "s.categories.category_id"
    );
    assert_eq!(
        found["s.employees.employee_id_manager"].0,
        "s.employees.employee_id"
    );
    assert_eq!(found.len(), 2);
}

#[test]
fn a_parent_that_is_itself_a_reference_is_followed_to_its_root_in_the_evidence() {
    // The root's key is named otherwise: the child's name finds the extension only.
    let mut inv = inventory(&[
        "sales.purchases.purchase_no pk+",
        "sales.order_details.order_id pk",
        "sales.shipment_items.order_id",
    ]);
    inv.foreign_keys.push(ForeignKey {
        child: id("sales.order_details.order_id"),
        parent: id("sales.purchases.purchase_no"),
    });
    let found = parents(&inv);
    assert_eq!(
        found["sales.shipment_items.order_id"],
        (
            "sales.order_details.order_id".to_string(),
            "name equals the primary key of order_details, chain: sales.order_details.order_id -> sales.purchases.purchase_no".to_string()
        )
    );
    // An inferred extension is followed as well.
    let inv = inventory(&[
        "shop.orders.id pk+",
        "shop.order_details.order_id pk",
        "shop.shipment_items.order_ref",
    ]);
    let rule = Template::new("order_ref", "shop.order_details.order_id").expect("pin");
    let settings = Settings {
        enabled: true,
        rules: vec![rule],
    };
    let inference = infer(&inv, &settings, &[]);
    assert_eq!(
        inference.parents[&id("shop.shipment_items.order_ref")].evidence,
        "rule 0: order_ref, chain: shop.order_details.order_id -> shop.orders.id"
    );
}

#[test]
fn a_pin_names_one_column_whatever_its_case_and_nothing_else() {
    let inv = inventory(&[
        "gh.accounts.owner_id pk",
        "gh.profiles.owner_id pk",
        "gh.gists.Owner_ID",
        "gh.gists.owner_ids",
    ]);
    assert_eq!(infer(&inv, &Settings::default(), &[]).ambiguous.len(), 1);
    let rule = Template::new("owner_id", "gh.accounts.owner_id").expect("pin");
    assert!(rule.is_pin());
    let settings = Settings {
        enabled: true,
        rules: vec![rule],
    };
    let inference = infer(&inv, &settings, &[]);
    assert!(inference.ambiguous.is_empty());
    let gist = &inference.parents[&id("gh.gists.Owner_ID")];
    assert_eq!(gist.parent, id("gh.accounts.owner_id"));
    assert_eq!(gist.evidence, "rule 0: owner_id");
    // Every column of that name: the other key of that name too, as a shared primary key.
    assert_eq!(
        inference.parents[&id("gh.profiles.owner_id")].evidence,
        "shared primary key, rule 0: owner_id"
    );
    assert_eq!(inference.parents.len(), 2);
    let (key, message) = Template::new("owner_id", "{table}.id").expect_err("placeholder");
    assert_eq!(key, "parent");
    assert!(message.contains("without placeholders"), "{message}");
}

proptest! {
    #[test]
    fn any_column_without_an_id_like_ending_is_never_matched_by_a_built_in_rule(
        name in "[a-z_]{1,20}",
    ) {
        prop_assume!(!name.ends_with("id") && !name.ends_with("_no"));
        let inv = inventory(&[
            &format!("s.{name}s.id pk+"),
            &format!("s.t.{name} pk"),
            &format!("s.x.{name}"),
        ]);
        let found = parents(&inv);
        let column = format!("s.x.{}", name);
        prop_assert!(!found.contains_key(&column), "{:?}", found);
    }

    #[test]
    fn every_singular_id_finds_its_plural_table(singular in "[a-z]{1,12}") {
        let inv = inventory(&[
            &format!("s.{}.id pk+", plural(&singular)),
            &format!("s.x.{singular}_id"),
        ]);
        prop_assume!(!looks_like_a_value(&format!("{singular}_id")));
        prop_assert_eq!(
            parent_of(&inv, &format!("s.x.{singular}_id")),
            Some(format!("s.{}.id", plural(&singular)))
        );
    }
}
