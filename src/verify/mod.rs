//! Proving the result: compare a source and a destination.
//!
//! The quick level compares, per destination db, the number of keys on both sides
//! (`INFO keyspace`), taking the db mapping into account, and how many keys carry an
//! expiry. A difference no bigger than the keys with an expiry is flagged as possibly
//! caused by keys expiring between the two reads. The deep level ([`deep`]) compares
//! every key, in both directions; [`file`] compares an RDB file's keys with a destination.

pub mod deep;
pub mod file;

use std::collections::BTreeMap;
use crate::net::{Conn, NetError};
use crate::writer::DbMap;

/// Keys in one db.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbCount {
    /// Keys.
    pub keys: u64,
    /// Keys with an expiry.
    pub expires: u64,
}

/// One destination db compared with the source dbs mapped into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Destination db.
    pub target_db: u32,
    /// The source dbs that map into it.
    pub source_dbs: Vec<u32>,
    /// Their keys, summed.
    pub source: DbCount,
    /// The destination db's keys.
    pub target: DbCount,
}

impl Row {
    /// Same number of keys on both sides.
    pub fn matches(&self) -> bool {
        self.source.keys == self.target.keys
    }

    /// A difference that keys expiring between the two reads could explain.
    pub fn maybe_expiry(&self) -> bool {
        let diff = self.source.keys.abs_diff(self.target.keys);
        diff > 0 && diff <= self.source.expires.max(self.target.expires)
    }
}

/// The quick comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickReport {
    /// One row per destination db that either side has keys in.
    pub rows: Vec<Row>,
}

impl QuickReport {
    /// Every row matches.
    pub fn identical(&self) -> bool {
        self.rows.iter().all(Row::matches)
    }

    /// A table for people.
    pub fn to_text(&self) -> String {
        let mut out = String::from("db   source keys (expires)   destination keys (expires)\n");
        for r in &self.rows {
            let from = if r.source_dbs == [r.target_db] || r.source_dbs.is_empty() {
                String::new()
            } else {
                format!(" <- source db {}", r.source_dbs.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("+"))
            };
            let verdict = if r.matches() {
                "same"
            } else if r.maybe_expiry() {
                "DIFFERENT (by no more than the keys with an expiry: keys may have expired between the reads)"
            } else {
                "DIFFERENT"
            };
            out.push_str(&format!(
                "{:<4} {:>12} ({:>6})   {:>12} ({:>6})   {verdict}{from}\n",
                r.target_db, r.source.keys, r.source.expires, r.target.keys, r.target.expires
            ));
        }
        out
    }
}

/// `INFO keyspace` of a server, per db.
pub fn keyspace(conn: &mut Conn) -> Result<BTreeMap<u32, DbCount>, NetError> {
    Ok(parse_keyspace(&conn.info("keyspace")?))
}

/// The per-db counts in the text of `INFO keyspace` (`db0:keys=1,expires=0,...`).
pub fn parse_keyspace(text: &str) -> BTreeMap<u32, DbCount> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((db, rest)) = line.strip_prefix("db").and_then(|l| l.split_once(':')) else { continue };
        let Ok(db) = db.parse::<u32>() else { continue };
        let field = |name: &str| {
            rest.split(',').find_map(|f| f.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
        };
        out.insert(db, DbCount { keys: field("keys="), expires: field("expires=") });
    }
    out
}

/// Compares key counts per destination db.
pub fn quick(source: &mut Conn, target: &mut Conn, map: &DbMap) -> Result<QuickReport, NetError> {
    let src = keyspace(source)?;
    let dst = keyspace(target)?;
    Ok(compare(&src, &dst, map))
}

/// The comparison itself, for two keyspaces already read.
pub fn compare(src: &BTreeMap<u32, DbCount>, dst: &BTreeMap<u32, DbCount>, map: &DbMap) -> QuickReport {
    let mut rows: BTreeMap<u32, Row> = BTreeMap::new();
    let row = |db: u32| Row { target_db: db, source_dbs: Vec::new(), source: DbCount::default(), target: DbCount::default() };
    for (&db, c) in src {
        let t = map.target(db);
        let r = rows.entry(t).or_insert_with(|| row(t));
        r.source_dbs.push(db);
        r.source.keys += c.keys;
        r.source.expires += c.expires;
    }
    for (&db, c) in dst {
        rows.entry(db).or_insert_with(|| row(db)).target = *c;
    }
    QuickReport { rows: rows.into_values().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_db_map() {
        let c = |keys, expires| DbCount { keys, expires };
        let src: BTreeMap<u32, DbCount> = [(0, c(10, 2)), (3, c(5, 0))].into();
        let dst: BTreeMap<u32, DbCount> = [(1, c(10, 2)), (0, c(5, 0))].into();
        let map = DbMap { pairs: DbMap::parse_pairs("0=1,3=0").unwrap(), fold: None };
        assert!(compare(&src, &dst, &map).identical());
        assert!(!compare(&src, &dst, &DbMap::default()).identical());
        let folded = compare(&src, &[(0, c(15, 2))].into(), &DbMap { fold: Some(0), ..DbMap::default() });
        assert!(folded.identical(), "{}", folded.to_text());
        let drift = compare(&src, &[(0, c(9, 1)), (3, c(5, 0))].into(), &DbMap::default());
        assert!(!drift.identical() && drift.rows[0].maybe_expiry());
        let extra = compare(&src, &[(0, c(10, 2)), (3, c(5, 0)), (7, c(1, 0))].into(), &DbMap::default());
        assert!(!extra.identical(), "a db only the destination has is a difference");
        assert!(extra.to_text().contains("DIFFERENT"));
    }
}
