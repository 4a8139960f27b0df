//! Whether a shard runs in strict mode (`@@GLOBAL.sql_mode`). Without `STRICT_TRANS_TABLES`
//! or `STRICT_ALL_TABLES`, a value too large for its column is silently clamped to the type
//! maximum (a warning, not an error): an ID past the maximum corrupts data instead of
//! failing the insert. One small query per poll, the same on MySQL 8 and MariaDB (both
//! expand combination modes such as `TRADITIONAL` into their parts).

use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::query as db;
use crate::db::DbError;

/// The server's global SQL mode, what new sessions start with.
pub const SQL_MODE_SQL: &str = "SELECT CAST(@@GLOBAL.sql_mode AS CHAR)";

/// The modes that make an out-of-range value an error instead of a clamped value.
pub const STRICT_MODES: [&str; 2] = ["STRICT_TRANS_TABLES", "STRICT_ALL_TABLES"];

/// Reads the server's global `sql_mode`, e.g. `STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION`.
pub async fn read(conn: &mut MySqlConnection, timeout: Duration) -> Result<String, DbError> {
    let what = "reading @@GLOBAL.sql_mode";
    let rows = db::fetch_all(conn, sqlx::query(SQL_MODE_SQL), timeout, what).await?;
    match rows.first() {
        Some(row) => Ok(db::opt_text(row, 0, what)?.unwrap_or_default()),
        None => Ok(String::new()),
    }
}

/// Whether `sql_mode` (a comma-separated list, any case) holds a strict mode.
pub fn is_strict(sql_mode: &str) -> bool {
    sql_mode.split(',').map(str::trim).any(|mode| {
        STRICT_MODES
            .iter()
            .any(|strict| mode.eq_ignore_ascii_case(strict))
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::is_strict;

    #[test]
    fn either_strict_mode_makes_a_shard_strict() {
        // MariaDB 10.2.4+ and MySQL 5.7+ defaults.
        assert!(is_strict(
            "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION"
        ));
        assert!(is_strict(
            "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
        ));
        assert!(is_strict("STRICT_ALL_TABLES"));
        assert!(is_strict("strict_all_tables"));
        // TRADITIONAL as the server expands it.
        assert!(is_strict(
            "STRICT_TRANS_TABLES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,TRADITIONAL,NO_ENGINE_SUBSTITUTION"
        ));
    }

    #[test]
    fn an_empty_or_lax_mode_is_not_strict() {
        assert!(!is_strict(""));
        assert!(!is_strict("NO_ENGINE_SUBSTITUTION"));
        assert!(!is_strict("ANSI,NO_ZERO_DATE"));
        // A mode that only contains the word is not the mode.
        assert!(!is_strict("NOT_STRICT_TRANS_TABLES"));
        assert!(!is_strict("STRICT_TRANS_TABLES_X"));
    }

    proptest! {
        /// The strict mode anywhere in a list of other modes is found; the list without it
        /// is not strict.
        #[test]
        fn a_strict_mode_is_found_wherever_it_stands(
            others in proptest::collection::vec("[A-Z_]{1,20}", 0..8),
            at in any::<prop::sample::Index>(),
            strict in prop::sample::select(vec!["STRICT_TRANS_TABLES", "STRICT_ALL_TABLES"]),
        ) {
            let others: Vec<String> = others
                .into_iter()
                .filter(|m| m != "STRICT_TRANS_TABLES" && m != "STRICT_ALL_TABLES")
                .collect();
            prop_assert!(!is_strict(&others.join(",")));
            let mut with = others.clone();
            with.insert(at.index(others.len() + 1), strict.to_string());
            prop_assert!(is_strict(&with.join(",")));
        }
    }
}
