//! One plan per key: how a snapshot key goes to a destination ([`key_plan`]), and
//! what a destination cannot hold at all ([`UnsupportedScan`], [`unsupported_in`]).
//! Decisions only; [`super::apply`] carries them out.

use super::apply::Skipped;
use super::filter::KeyFilter;
use super::{Destination, Profile};
use crate::bytesfmt::Printable;
use crate::rdb::{Encoding, KeyStart, Kind, Magic, RdbVersion, Record};

/// How a snapshot key goes to the destination ([`key_plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPlan {
    /// Plain commands.
    Commands,
    /// One `RESTORE`, if its payload can be had; else commands after all.
    Restore(Via),
}

/// Where a `RESTORE` payload comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The source's own payload, captured by the decoder, stamped with the source's
    /// RDB version.
    OwnPayload,
    /// The value re-encoded in the plain types ([`super::payload`]), stamped with this
    /// RDB version (the destination's).
    Reencoded(u16),
    /// A module value's own payload stamped with this RDB version (the
    /// destination's): a module serializes its values itself, the same in every RDB
    /// version since module types came (8, Redis 4.0).
    Restamped(u16),
}


/// How the key `k` goes to `p` (`source_version`: the snapshot's RDB version;
/// `capturing`: the decoder captures the key's value; `reencode`: re-encoding is on).
///
/// - A plain string goes as `SET`, cheaper than `RESTORE` (measured: 1M small strings
///   1.71 s against 1.88 s); for collections it is the other way round.
/// - A hash whose fields may carry TTLs `p` cannot hold goes as commands, so that the
///   TTLs are seen.
/// - Where `p` takes the source's RDB version: `RESTORE` with the source's own payload.
/// - Else a list, set, sorted set or hash goes as `RESTORE` with its value re-encoded
///   in the plain types, stamped with `p`'s own version, where `p` has `RESTORE`; a
///   module value as `RESTORE` of its own payload stamped with `p`'s version (8+).
/// - Everything else goes as commands.
pub fn key_plan(k: &KeyStart, source_version: Option<u32>, capturing: bool, reencode: bool, p: &Profile) -> KeyPlan {
    let kind = k.encoding.kind();
    if kind == Kind::String || (has_field_ttls(k.encoding) && !p.has_field_ttl()) {
        return KeyPlan::Commands;
    }
    let Some(source) = source_version else { return KeyPlan::Commands };
    if p.accepts_payload(source) {
        return if capturing { KeyPlan::Restore(Via::OwnPayload) } else { KeyPlan::Commands };
    }
    let plain = matches!(kind, Kind::List | Kind::Set | Kind::Zset | Kind::Hash);
    if kind == Kind::Module {
        return match p.rdb_version().filter(|&own| own >= 8 && p.accepts_payload(own)).map(u16::try_from) {
            Some(Ok(own)) if capturing => KeyPlan::Restore(Via::Restamped(own)),
            _ => KeyPlan::Commands,
        };
    }
    match p.rdb_version() {
        Some(own) if reencode && plain && p.accepts_payload(own) => match u16::try_from(own) {
            Ok(v) => KeyPlan::Restore(Via::Reencoded(v)),
            Err(_) => KeyPlan::Commands,
        },
        _ => KeyPlan::Commands,
    }
}

/// Finds, ahead of writing, what a destination cannot hold: a first pass over an RDB
/// file, so that `restore` can stop before it writes anything.
#[derive(Debug, Default)]
pub struct UnsupportedScan {
    /// Keys left out by the filter are not looked at.
    pub filter: KeyFilter,
    /// What was found (up to 1000).
    pub found: Vec<Skipped>,
    /// How many in all.
    pub count: u64,
    current: Option<(u64, Vec<u8>, bool)>,
    /// The module key being read (its type comes with its value).
    module_key: Option<(u64, Vec<u8>)>,
}

impl UnsupportedScan {
    /// A scan of the keys `filter` admits.
    pub fn new(filter: KeyFilter) -> UnsupportedScan {
        UnsupportedScan { filter, ..UnsupportedScan::default() }
    }

    /// What a snapshot of this RDB format may carry that `p` cannot hold; empty when
    /// a scan could find nothing (so there is no need for one). Streams come with RDB 9
    /// (Redis 5.0), functions with 10 (7.0), hash field TTLs with 12 (7.4) and Valkey's
    /// own format.
    pub fn may_find(v: RdbVersion, p: &super::Profile) -> Vec<&'static str> {
        let at_least = |n: u32| v.magic == Magic::Valkey || v.version >= n;
        let mut out = Vec::new();
        if at_least(9) && !p.has_streams() {
            out.push("streams");
        }
        if at_least(10) && !p.has_functions() {
            out.push("functions");
        }
        if at_least(12) && !p.has_field_ttl() {
            out.push("hash field TTLs");
        }
        out
    }

    /// Looks at one record.
    pub fn record(&mut self, r: &Record, p: &Profile) {
        match r {
            Record::Key(k) => {
                self.current = None;
                self.module_key = None;
                if !self.filter.admits(k.key) {
                    return;
                }
                if k.encoding.kind() == Kind::Module {
                    self.module_key = Some((k.db, k.key.to_vec()));
                }
                if let Some(why) = unsupported_in(k.encoding, p) {
                    self.add(k.db, Printable(k.key).to_string(), why);
                } else if has_field_ttls(k.encoding) && !p.has_field_ttl() {
                    self.current = Some((k.db, k.key.to_vec(), false));
                }
            }
            Record::Value(crate::rdb::Chunk::Module { module, .. }) => {
                if let Some((db, key)) = self.module_key.take() {
                    if let Some(why) = p.module_unsupported(*module) {
                        self.add(db, Printable(&key).to_string(), why);
                    }
                }
            }
            Record::Value(crate::rdb::Chunk::Hash(fields)) => {
                if let Some((_, _, seen)) = &mut self.current {
                    *seen |= fields.iter().any(|f| f.expire_at_ms.is_some());
                }
            }
            Record::KeyEnd => {
                if let Some((db, key, true)) = self.current.take() {
                    self.add(db, Printable(&key).to_string(), field_ttl_why(p));
                }
            }
            Record::Function { .. } | Record::FunctionPreGa { .. } if !p.has_functions() => {
                self.add(0, "(function library)".into(), format!("{} has no functions (7.0+)", p.server));
            }
            _ => {}
        }
    }

    fn add(&mut self, db: u64, key: String, why: String) {
        self.count += 1;
        if self.found.len() < 1000 {
            self.found.push(Skipped { db, key, why });
        }
    }
}

/// Why a key of this encoding cannot go into `dest`, if it cannot.
pub fn unsupported(enc: Encoding, dest: &Destination) -> Option<String> {
    unsupported_in(enc, dest.profile())
}

/// Why a key of this encoding cannot go into `p`, if it cannot.
pub fn unsupported_in(enc: Encoding, p: &Profile) -> Option<String> {
    match enc.kind() {
        Kind::Stream if !p.has_streams() => Some(format!("it is a stream and {} has no streams (5.0+)", p.server)),
        _ => None,
    }
}

/// Why a hash with field TTLs cannot go into `p`.
pub fn field_ttl_why(p: &Profile) -> String {
    format!("its hash fields carry TTLs and {} has no field expiry (7.4+)", p.server)
}

/// Encodings whose fields may carry TTLs.
pub fn has_field_ttls(enc: Encoding) -> bool {
    matches!(
        enc,
        Encoding::HashMetadataPreGa
            | Encoding::HashListpackExPreGa
            | Encoding::HashMetadata
            | Encoding::HashListpackEx
            | Encoding::ValkeyHash2
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: (u32, u32, u32)) -> Profile {
        Profile {
            server: format!("Redis {}.{}.{}", v.0, v.1, v.2),
            version: v,
            valkey: false,
            cluster: false,
            keyspace: vec![],
            refuses: Default::default(),
            max_bulk: 512 << 20,
            modules: Some(vec![]),
        }
    }

    fn plan(encoding: Encoding, source: u32, dest: (u32, u32, u32), capturing: bool, reencode: bool) -> KeyPlan {
        let k = KeyStart {
            db: 0,
            key: b"k",
            encoding,
            expire_at_ms: None,
            idle_seconds: None,
            lfu_freq: None,
            meta: Default::default(),
        };
        key_plan(&k, Some(source), capturing, reencode, &profile(dest))
    }

    #[test]
    fn key_plans() {
        use KeyPlan::*;
        let re = |v| Restore(Via::Reencoded(v));
        // A 7.0 source (RDB 10) into each older version: re-encoded, stamped with its own.
        for (dest, v) in
            [((2, 8, 17), 6), ((3, 0, 5), 6), ((3, 2, 0), 7), ((3, 2, 6), 7), ((5, 0, 6), 9), ((6, 2, 14), 9)]
        {
            for enc in [Encoding::ListQuicklist2, Encoding::SetListpack, Encoding::ZsetListpack, Encoding::HashListpack]
            {
                assert_eq!(plan(enc, 10, dest, true, true), re(v), "{enc:?} into {dest:?}");
            }
        }
        // Older sources whose version the destination does not take: re-encoded too.
        assert_eq!(plan(Encoding::HashZipmap, 2, (2, 8, 17), true, true), re(6));
        assert_eq!(plan(Encoding::ListQuicklist, 7, (3, 0, 5), true, true), re(6));
        // Where the destination takes the source's version: its own payload.
        assert_eq!(plan(Encoding::ZsetListpack, 10, (7, 0, 15), true, true), Restore(Via::OwnPayload));
        assert_eq!(plan(Encoding::ZsetListpack, 10, (7, 0, 15), false, true), Commands, "not captured");
        assert_eq!(plan(Encoding::StreamListpacks, 9, (6, 2, 14), true, true), Restore(Via::OwnPayload));
        // Commands: strings, streams and modules that need re-encoding, field TTLs the
        // destination cannot hold, re-encoding off, no RESTORE at all.
        assert_eq!(plan(Encoding::String, 10, (2, 8, 17), true, true), Commands);
        assert_eq!(plan(Encoding::StreamListpacks2, 10, (6, 2, 14), true, true), Commands);
        // A module value the destination does not take as it is: its payload
        // restamped with the destination's version (modules came with RDB 8).
        assert_eq!(plan(Encoding::Module2, 10, (6, 2, 14), true, true), Restore(Via::Restamped(9)));
        assert_eq!(plan(Encoding::Module2, 13, (7, 0, 15), true, false), Restore(Via::Restamped(10)));
        assert_eq!(plan(Encoding::Module2, 12, (8, 0, 6), true, true), Restore(Via::OwnPayload));
        assert_eq!(plan(Encoding::Module2, 13, (3, 2, 6), true, true), Commands);
        assert_eq!(plan(Encoding::Module2, 13, (7, 0, 15), false, true), Commands);
        assert_eq!(plan(Encoding::HashListpackEx, 12, (6, 2, 14), true, true), Commands);
        assert_eq!(plan(Encoding::HashListpack, 10, (2, 8, 17), true, false), Commands);
        assert_eq!(plan(Encoding::HashListpack, 10, (2, 4, 16), true, true), Commands);
        // A destination with field TTLs takes a hash that may carry them re-encoded (the
        // builder refuses it if a field does).
        let valkey9 = KeyStart {
            db: 0,
            key: b"k",
            encoding: Encoding::ValkeyHash2,
            expire_at_ms: None,
            idle_seconds: None,
            lfu_freq: None,
            meta: Default::default(),
        };
        assert_eq!(key_plan(&valkey9, Some(80), true, true, &profile((7, 4, 1))), re(12));
    }

    fn rdb(version: u32) -> RdbVersion {
        RdbVersion { magic: Magic::Redis, version }
    }

    #[test]
    fn what_a_snapshot_may_hold_that_a_destination_cannot() {
        assert_eq!(UnsupportedScan::may_find(rdb(10), &profile((3, 2, 6))), ["streams", "functions"]);
        assert_eq!(UnsupportedScan::may_find(rdb(9), &profile((3, 2, 6))), ["streams"]);
        assert_eq!(UnsupportedScan::may_find(rdb(10), &profile((6, 2, 14))), ["functions"]);
        assert_eq!(UnsupportedScan::may_find(rdb(12), &profile((7, 0, 15))), ["hash field TTLs"]);
        let valkey9 = RdbVersion { magic: Magic::Valkey, version: 80 };
        assert_eq!(UnsupportedScan::may_find(valkey9, &profile((7, 2, 6))), ["hash field TTLs"]);
        assert_eq!(UnsupportedScan::may_find(valkey9, &profile((2, 8, 17))).len(), 3);
        // Nothing to look for: the same version, an older one, or a destination that has it all.
        for (v, dest) in [(10, (7, 0, 15)), (9, (5, 0, 6)), (8, (3, 2, 6)), (6, (2, 8, 17)), (12, (7, 4, 1)), (11, (7, 2, 6))] {
            assert!(UnsupportedScan::may_find(rdb(v), &profile(dest)).is_empty(), "RDB {v} into {dest:?}");
        }
        let valkey = Profile { valkey: true, ..profile((9, 0, 0)) };
        assert!(UnsupportedScan::may_find(valkey9, &valkey).is_empty());
    }
}
