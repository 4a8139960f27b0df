//! A column's type as information_schema writes it (`int(10) unsigned`), held in 16 bytes:
//! one of the usual spellings of an integer type as an index into a constant table, shared
//! by every column that has it; any other spelling as read.

use std::fmt;
use std::ops::Deref;

/// The spellings MariaDB and MySQL give the integer types, with and without the display
/// width MySQL 8 dropped; sorted (a test checks), for the binary search.
const USUAL: [&str; 23] = [
    "bigint",
    "bigint unsigned",
    "bigint(20)",
    "bigint(20) unsigned",
    "bigint(20) unsigned zerofill",
    "int",
    "int unsigned",
    "int(10) unsigned",
    "int(10) unsigned zerofill",
    "int(11)",
    "mediumint",
    "mediumint unsigned",
    "mediumint(8) unsigned",
    "mediumint(9)",
    "smallint",
    "smallint unsigned",
    "smallint(5) unsigned",
    "smallint(6)",
    "tinyint",
    "tinyint unsigned",
    "tinyint(1)",
    "tinyint(3) unsigned",
    "tinyint(4)",
];

/// `COLUMN_TYPE` of an integer column; reads as the `str` it was read as.
#[derive(Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// `USUAL[i]`.
    Usual(u8),
    /// Any other spelling, as read.
    Other(Box<str>),
}

/// `text` as a [`ColumnType`]: the shared constant when it is a usual spelling.
pub fn column_type(text: &str) -> ColumnType {
    match USUAL.binary_search(&text) {
        Ok(i) => ColumnType::Usual(u8::try_from(i).unwrap_or(u8::MAX)),
        Err(_) => ColumnType::Other(text.into()),
    }
}

impl Deref for ColumnType {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            ColumnType::Usual(i) => USUAL.get(usize::from(*i)).copied().unwrap_or(""),
            ColumnType::Other(text) => text,
        }
    }
}

impl From<&str> for ColumnType {
    fn from(text: &str) -> ColumnType {
        column_type(text)
    }
}

impl From<String> for ColumnType {
    fn from(text: String) -> ColumnType {
        column_type(&text)
    }
}

impl PartialEq<str> for ColumnType {
    fn eq(&self, other: &str) -> bool {
        **self == *other
    }
}

impl PartialEq<&str> for ColumnType {
    fn eq(&self, other: &&str) -> bool {
        **self == **other
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl serde::Serialize for ColumnType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_types_are_sorted_shared_and_read_back() {
        assert!(USUAL.is_sorted());
        assert!(USUAL.len() <= usize::from(u8::MAX));
        for text in USUAL {
            assert!(matches!(column_type(text), ColumnType::Usual(_)), "{text}");
            assert_eq!(&*column_type(text), text);
        }
        let odd = column_type("int(7) unsigned");
        assert!(matches!(odd, ColumnType::Other(_)));
        assert_eq!(odd, "int(7) unsigned");
        assert_eq!(odd.to_string(), "int(7) unsigned");
        assert_eq!(
            serde_json::to_string(&column_type("bigint(20)"))
                .ok()
                .as_deref(),
            Some("\"bigint(20)\"")
        );
        assert_eq!(size_of::<ColumnType>(), 16);
    }
}
