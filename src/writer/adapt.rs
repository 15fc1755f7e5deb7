//! Stream commands in forms an older destination takes.
//!
//! A master propagates some commands in forms that only its own version knows: 6.2+
//! turn `SET ... EX` into `SET ... PX`/`PXAT`, 7.0+ into `SET ... PXAT`, 6.0+ turn
//! `INCRBYFLOAT` into `SET ... KEEPTTL`. Replayed into an older destination those are
//! rewritten into equivalent commands it has. Commands for data the destination cannot
//! hold at all (streams before 5.0, functions before 7.0, hash-field TTLs before 7.4)
//! are reported as unsupported.

use super::Profile;

/// What to send instead of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adapted {
    /// The command as it is.
    AsIs,
    /// These commands, in order (in one transaction when there are several and the
    /// command is not already inside one).
    Instead(Vec<Vec<Vec<u8>>>),
    /// The destination cannot do this at all: why.
    Unsupported(String),
}

/// Restores a TTL around a SET that drops it: `SET KEYS[1] ARGV[1]` keeping the TTL
/// the key had (what `KEEPTTL`, 6.0+, does).
const KEEPTTL_SCRIPT: &[u8] = b"local t = redis.call('PTTL', KEYS[1]) \
redis.call('SET', KEYS[1], ARGV[1]) \
if t > 0 then redis.call('PEXPIRE', KEYS[1], t) end \
return 1";

/// How `args` (a propagated command) can be applied to `p`.
pub fn adapt(args: &[&[u8]], p: &Profile) -> Adapted {
    let Some(name) = args.first() else { return Adapted::AsIs };
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    if !p.has_streams() && name.len() > 1 && (name[0] == b'X' || name[0] == b'x') && is_stream_command(name) {
        return Adapted::Unsupported(format!("{} has no streams (5.0+)", p.server));
    }
    if !p.has_functions() && (is("FUNCTION") || is("FCALL") || is("FCALL_RO")) {
        return Adapted::Unsupported(format!("{} has no functions (7.0+)", p.server));
    }
    if !p.has_field_ttl()
        && ["HEXPIRE", "HPEXPIRE", "HEXPIREAT", "HPEXPIREAT", "HPERSIST", "HSETEX", "HGETEX"].iter().any(|n| is(n))
    {
        return Adapted::Unsupported(format!("{} has no hash-field expiry (7.4+)", p.server));
    }
    if is("SET") && args.len() > 3 {
        return adapt_set(args, p);
    }
    Adapted::AsIs
}

fn is_stream_command(name: &[u8]) -> bool {
    ["XADD", "XDEL", "XTRIM", "XGROUP", "XCLAIM", "XAUTOCLAIM", "XSETID", "XACK", "XREADGROUP"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
fn adapt_set(args: &[&[u8]], p: &Profile) -> Adapted {
    let (key, value) = (args[1], args[2]);
    let mut cond: Option<&[u8]> = None;
    let mut get = false;
    let mut expiry: Option<(&[u8], &[u8])> = None;
    let mut keepttl = false;
    let mut i = 3;
    while i < args.len() {
        let o = args[i];
        let up = o.to_ascii_uppercase();
        match &up[..] {
            b"NX" | b"XX" => cond = Some(o),
            b"GET" => get = true,
            b"KEEPTTL" => keepttl = true,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if i + 1 < args.len() => {
                expiry = Some((o, args[i + 1]));
                i += 1;
            }
            // Something this adapter does not know: leave the command to the
            // destination, which says whether it takes it.
            _ => return Adapted::AsIs,
        }
        i += 1;
    }
    let absolute = expiry.is_some_and(|(o, _)| o.eq_ignore_ascii_case(b"EXAT") || o.eq_ignore_ascii_case(b"PXAT"));
    let needs_rewrite = (absolute && !p.has_set_abs_expiry()) || (keepttl && !p.has_keepttl()) || (get && !p.has_set_get());
    if !needs_rewrite {
        return Adapted::AsIs;
    }
    if keepttl {
        if cond.is_some() || expiry.is_some() {
            return Adapted::AsIs;
        }
        let script = vec![b"EVAL".to_vec(), KEEPTTL_SCRIPT.to_vec(), b"1".to_vec(), key.to_vec(), value.to_vec()];
        return Adapted::Instead(vec![script]);
    }
    let mut set = vec![b"SET".to_vec(), key.to_vec(), value.to_vec()];
    if let Some(c) = cond {
        set.push(c.to_vec());
    }
    let mut out = Vec::new();
    match expiry {
        Some((o, v)) if absolute => {
            out.push(set);
            let ms = if o.eq_ignore_ascii_case(b"EXAT") {
                match std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()) {
                    Some(s) => s.saturating_mul(1000).to_string().into_bytes(),
                    None => return Adapted::AsIs,
                }
            } else {
                v.to_vec()
            };
            let cmd = if p.has_pexpireat() { b"PEXPIREAT".to_vec() } else { b"EXPIREAT".to_vec() };
            let when = if p.has_pexpireat() {
                ms
            } else {
                match std::str::from_utf8(&ms).ok().and_then(|s| s.parse::<i64>().ok()) {
                    Some(ms) => (ms / 1000).to_string().into_bytes(),
                    None => return Adapted::AsIs,
                }
            };
            out.push(vec![cmd, key.to_vec(), when]);
        }
        Some((o, v)) => {
            set.push(o.to_vec());
            set.push(v.to_vec());
            out.push(set);
        }
        None => out.push(set),
    }
    Adapted::Instead(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: (u32, u32, u32)) -> Profile {
        Profile { server: format!("Redis {}.{}.{}", v.0, v.1, v.2), version: v, valkey: false, cluster: false, keyspace: vec![], refuses: Default::default(), max_bulk: 512 << 20, modules: Some(vec![]) }
    }

    fn words(cmds: &Adapted) -> Vec<String> {
        match cmds {
            Adapted::Instead(c) => c
                .iter()
                .map(|c| c.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "))
                .collect(),
            other => vec![format!("{other:?}")],
        }
    }

    #[test]
    fn set_with_absolute_expiry_into_old_servers() {
        let a: Vec<&[u8]> = vec![b"SET", b"k", b"v", b"PXAT", b"1795393438546"];
        assert_eq!(adapt(&a, &profile((7, 0, 15))), Adapted::AsIs);
        assert_eq!(adapt(&a, &profile((6, 2, 14))), Adapted::AsIs);
        assert_eq!(words(&adapt(&a, &profile((3, 2, 6)))), ["SET k v", "PEXPIREAT k 1795393438546"]);
        let a: Vec<&[u8]> = vec![b"set", b"k", b"v", b"xx", b"exat", b"1795393438"];
        assert_eq!(words(&adapt(&a, &profile((5, 0, 6)))), ["SET k v xx", "PEXPIREAT k 1795393438000"]);
        let a: Vec<&[u8]> = vec![b"SET", b"k", b"v", b"PXAT", b"1795393438546"];
        assert_eq!(words(&adapt(&a, &profile((2, 4, 16)))), ["SET k v", "EXPIREAT k 1795393438"]);
    }

    #[test]
    fn keepttl_and_get() {
        let a: Vec<&[u8]> = vec![b"SET", b"k", b"1.5", b"KEEPTTL"];
        assert_eq!(adapt(&a, &profile((6, 0, 0))), Adapted::AsIs);
        match adapt(&a, &profile((5, 0, 6))) {
            Adapted::Instead(c) => assert_eq!((c.len(), &c[0][0][..], &c[0][3][..], &c[0][4][..]), (1, &b"EVAL"[..], &b"k"[..], &b"1.5"[..])),
            other => panic!("{other:?}"),
        }
        let a: Vec<&[u8]> = vec![b"SET", b"k", b"v", b"GET", b"PX", b"100"];
        assert_eq!(words(&adapt(&a, &profile((5, 0, 6)))), ["SET k v PX 100"]);
        let a: Vec<&[u8]> = vec![b"SET", b"k", b"v", b"PX", b"100"];
        assert_eq!(adapt(&a, &profile((2, 8, 17))), Adapted::AsIs);
    }

    #[test]
    fn unsupported_families() {
        assert!(matches!(adapt(&[b"XADD", b"s", b"1-1", b"f", b"v"], &profile((3, 2, 6))), Adapted::Unsupported(_)));
        assert_eq!(adapt(&[b"XADD", b"s", b"1-1", b"f", b"v"], &profile((5, 0, 6))), Adapted::AsIs);
        assert!(matches!(adapt(&[b"FUNCTION", b"LOAD", b"x"], &profile((6, 2, 14))), Adapted::Unsupported(_)));
        assert!(matches!(adapt(&[b"HPEXPIREAT", b"h", b"1", b"FIELDS", b"1", b"f"], &profile((7, 2, 0))), Adapted::Unsupported(_)));
        // Not a stream command, though it starts with X.
        assert_eq!(adapt(&[b"XYZ"], &profile((3, 2, 6))), Adapted::AsIs);
    }
}
