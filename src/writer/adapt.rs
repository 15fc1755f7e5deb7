//! Stream commands in forms an older destination takes.
//!
//! A master propagates some commands in forms that only its own version knows: 6.2+
//! turn `SET ... EX` into `SET ... PX`/`PXAT`, 7.0+ into `SET ... PXAT`, 6.0+ turn
//! `INCRBYFLOAT` into `SET ... KEEPTTL`. Replayed into an older destination those are
//! rewritten into equivalent commands it has. Commands for data the destination cannot
//! hold at all (streams before 5.0, functions before 7.0, hash-field TTLs before 7.4)
//! are reported as unsupported.
//!
//! Redis 8 and Valkey 8.1/9 add commands the others lack, which a master propagates
//! as they are (once it has resolved their conditions and relative times): `HSETEX`,
//! `SET ... IFEQ`, `DELEX`, `MSETEX`, `XADD ... IDMP`, `XDELEX`, `XACKDEL`. A master only
//! propagates a write that happened, and the destination holds what the source held, so
//! a condition can be dropped: each goes as the plain commands with the same effect
//! where the destination lacks it. What only a newer server can hold (an idempotent
//! producer's state, `XCFGSET`; vector sets; references `DELREF` removes) is
//! unsupported there.
//!
//! An `XADD ... IDMP` goes without its producer part everywhere, Redis 8.6 included:
//! it refuses the propagated form (an explicit id) from a client. An empty
//! [`Adapted::Instead`] means nothing is to be sent: an `XADD ... IDMP` whose id is
//! still `*` is one the master found to be a duplicate (it gives every new entry its
//! id), so there is nothing to add.

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
    /// These commands do what the destination can of it; the rest it cannot hold
    /// (why), which counts as unsupported.
    Partly(Vec<Vec<Vec<u8>>>, String),
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
    if is("HSETEX") && !p.has_hsetex() {
        return adapt_hsetex(args, p);
    }
    if !p.has_field_ttl() && ["HEXPIRE", "HPEXPIRE", "HEXPIREAT", "HPEXPIREAT", "HPERSIST", "HGETEX"].iter().any(|n| is(n)) {
        return Adapted::Unsupported(format!("{} has no hash-field expiry (7.4+)", p.server));
    }
    if is("SET") && args.len() > 3 {
        return adapt_set(args, p);
    }
    if is("DELEX") && !p.has_delex() {
        return match args.len() {
            // Without a condition it is DEL (a condition is resolved by the master).
            2 => Adapted::Instead(vec![vec![b"DEL".to_vec(), args[1].to_vec()]]),
            _ => Adapted::Unsupported(format!("{} has no DELEX (Redis 8.6+)", p.server)),
        };
    }
    if is("MSETEX") && !p.has_msetex() {
        return adapt_msetex(args, p);
    }
    if is("XADD") {
        return adapt_xadd(args, p);
    }
    if is("XCFGSET") && !p.has_idmp() {
        return Adapted::Unsupported(format!("{} has no idempotent stream producers (Redis 8.6+)", p.server));
    }
    if (is("XDELEX") || is("XACKDEL")) && !p.has_xdelex() {
        return adapt_xdelex(args, p);
    }
    if !p.has_vectorsets() && name.len() > 1 && (name[0] == b'V' || name[0] == b'v') && is_vector_command(name) {
        return Adapted::Unsupported(format!("{} has no vector sets (Redis 8.0+)", p.server));
    }
    Adapted::AsIs
}

fn is_vector_command(name: &[u8]) -> bool {
    ["VADD", "VREM", "VSETATTR"].iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

fn upper(a: &[u8]) -> Vec<u8> {
    a.to_ascii_uppercase()
}

/// `HSETEX key [FNX|FXX] [PXAT ms|KEEPTTL] FIELDS n field value ...` (the propagated
/// form) where the destination has no `HSETEX`: `HSET`, with `HPEXPIREAT` for a `PXAT`
/// where it has field TTLs. `KEEPTTL` into a destination with no field TTLs is plain
/// `HSET` (it holds none to keep).
fn adapt_hsetex(args: &[&[u8]], p: &Profile) -> Adapted {
    let mut i = 2;
    let (mut pxat, mut keepttl) = (None, false);
    while i < args.len() {
        match &upper(args[i])[..] {
            b"FNX" | b"FXX" => i += 1,
            b"KEEPTTL" => {
                keepttl = true;
                i += 1;
            }
            b"PXAT" if i + 1 < args.len() => {
                pxat = Some(args[i + 1]);
                i += 2;
            }
            b"FIELDS" => break,
            // EX, PX, EXAT are never propagated; anything else is not known here.
            _ => return Adapted::AsIs,
        }
    }
    let Some(n) = args.get(i + 1).and_then(|n| std::str::from_utf8(n).ok()).and_then(|n| n.parse::<usize>().ok()) else {
        return Adapted::AsIs;
    };
    let pairs = &args[i + 2..];
    if n == 0 || pairs.len() != 2 * n {
        return Adapted::AsIs;
    }
    if keepttl && p.has_field_ttl() {
        // HSET would drop the fields' TTLs, which KEEPTTL keeps.
        return Adapted::Unsupported(format!("{} has no HSETEX (8.0+) to keep field TTLs with", p.server));
    }
    let mut hset = vec![b"HSET".to_vec(), args[1].to_vec()];
    hset.extend(pairs.iter().map(|a| a.to_vec()));
    if pxat.is_some() && !p.has_field_ttl() {
        // The fields, without their TTLs (as an HPEXPIREAT the destination lacks
        // leaves them).
        return Adapted::Partly(vec![hset], format!("{} has no hash-field expiry (7.4+): the fields go without their TTLs", p.server));
    }
    let mut out = vec![hset];
    if let Some(ms) = pxat {
        let mut e = vec![b"HPEXPIREAT".to_vec(), args[1].to_vec(), ms.to_vec(), b"FIELDS".to_vec(), n.to_string().into_bytes()];
        e.extend(pairs.chunks(2).map(|f| f[0].to_vec()));
        out.push(e);
    }
    Adapted::Instead(out)
}

/// `MSETEX n key value ... [NX|XX] [PXAT ms|KEEPTTL]` where the destination has none:
/// a `SET` per key with the same expiry, each adapted for the destination in turn.
fn adapt_msetex(args: &[&[u8]], p: &Profile) -> Adapted {
    let Some(n) = args.get(1).and_then(|n| std::str::from_utf8(n).ok()).and_then(|n| n.parse::<usize>().ok()) else {
        return Adapted::AsIs;
    };
    let Some(pairs) = args.get(2..2 + 2 * n) else { return Adapted::AsIs };
    let mut expiry: Vec<&[u8]> = Vec::new();
    let mut i = 2 + 2 * n;
    while i < args.len() {
        match &upper(args[i])[..] {
            // The master wrote, so the condition held.
            b"NX" | b"XX" => i += 1,
            b"KEEPTTL" => {
                expiry = vec![args[i]];
                i += 1;
            }
            b"PXAT" | b"EXAT" | b"PX" | b"EX" if i + 1 < args.len() => {
                expiry = vec![args[i], args[i + 1]];
                i += 2;
            }
            _ => return Adapted::AsIs,
        }
    }
    let mut out = Vec::new();
    for kv in pairs.chunks(2) {
        let mut set: Vec<&[u8]> = vec![b"SET", kv[0], kv[1]];
        set.extend(&expiry);
        match adapt(&set, p) {
            Adapted::AsIs => out.push(set.iter().map(|a| a.to_vec()).collect()),
            Adapted::Instead(cmds) => out.extend(cmds),
            unsupported => return unsupported,
        }
    }
    Adapted::Instead(out)
}

/// `XADD key [NOMKSTREAM] [KEEPREF|DELREF|ACKED] [IDMP pid iid|IDMPAUTO pid]
/// [MAXLEN|MINID [=|~] n [LIMIT c]] id field value ...` without the IDMP part, which
/// no server takes from a client with the explicit id the master propagates (an entry
/// whose id is still `*` was a duplicate: nothing to add), and without `KEEPREF` where
/// the destination lacks it (what older servers always do).
fn adapt_xadd(args: &[&[u8]], p: &Profile) -> Adapted {
    let mut out: Vec<Vec<u8>> = vec![args[0].to_vec(), args.get(1).map(|k| k.to_vec()).unwrap_or_default()];
    let mut i = 2;
    let mut idmp = false;
    let mut changed = false;
    while i < args.len() {
        let up = upper(args[i]);
        match &up[..] {
            b"NOMKSTREAM" => {
                out.push(args[i].to_vec());
                i += 1;
            }
            b"KEEPREF" | b"DELREF" | b"ACKED" if !p.has_xdelex() => {
                if &up[..] != b"KEEPREF" {
                    return Adapted::Unsupported(format!(
                        "{} cannot trim a stream with DELREF or ACKED (Redis 8.2+)",
                        p.server
                    ));
                }
                changed = true;
                i += 1;
            }
            b"KEEPREF" | b"DELREF" | b"ACKED" => {
                out.push(args[i].to_vec());
                i += 1;
            }
            // Even Redis 8.6 refuses its own propagated form from a client (IDMP
            // "only with auto-generated IDs"): the entry goes without its producer.
            b"IDMP" if i + 2 < args.len() => {
                (idmp, changed) = (true, true);
                i += 3;
            }
            b"IDMPAUTO" if i + 1 < args.len() => {
                (idmp, changed) = (true, true);
                i += 2;
            }
            b"MAXLEN" | b"MINID" => {
                out.push(args[i].to_vec());
                i += 1;
                if args.get(i).is_some_and(|a| *a == b"=" || *a == b"~") {
                    out.push(args[i].to_vec());
                    i += 1;
                }
                if let Some(n) = args.get(i) {
                    out.push(n.to_vec());
                    i += 1;
                }
                if args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(b"LIMIT")) && i + 1 < args.len() {
                    out.push(args[i].to_vec());
                    out.push(args[i + 1].to_vec());
                    i += 2;
                }
            }
            _ => break,
        }
    }
    if !changed {
        return Adapted::AsIs;
    }
    if idmp && args.get(i).is_some_and(|id| *id == b"*") {
        return Adapted::Instead(Vec::new());
    }
    out.extend(args[i..].iter().map(|a| a.to_vec()));
    Adapted::Instead(vec![out])
}

/// `XDELEX key [KEEPREF] IDS n id ...` as `XDEL`, `XACKDEL key group [KEEPREF] IDS n
/// id ...` as `XACK` and `XDEL`; `DELREF` and `ACKED` have no equivalent.
fn adapt_xdelex(args: &[&[u8]], p: &Profile) -> Adapted {
    let ack = args[0].eq_ignore_ascii_case(b"XACKDEL");
    let first = if ack { 3 } else { 2 };
    let Some(rest) = args.get(first..) else { return Adapted::AsIs };
    let rest = match rest.first().map(|a| upper(a)) {
        Some(o) if o == b"KEEPREF" => &rest[1..],
        Some(o) if o == b"DELREF" || o == b"ACKED" => {
            return Adapted::Unsupported(format!("{} has no {} (Redis 8.2+)", p.server, String::from_utf8_lossy(&o)))
        }
        _ => rest,
    };
    if !rest.first().is_some_and(|a| a.eq_ignore_ascii_case(b"IDS")) || rest.len() < 3 {
        return Adapted::AsIs;
    }
    let ids = &rest[2..];
    let key = args[1].to_vec();
    let mut del = vec![b"XDEL".to_vec(), key.clone()];
    del.extend(ids.iter().map(|a| a.to_vec()));
    if !ack {
        return Adapted::Instead(vec![del]);
    }
    let mut xack = vec![b"XACK".to_vec(), key, args[2].to_vec()];
    xack.extend(ids.iter().map(|a| a.to_vec()));
    Adapted::Instead(vec![xack, del])
}

fn is_stream_command(name: &[u8]) -> bool {
    ["XADD", "XDEL", "XTRIM", "XGROUP", "XCLAIM", "XAUTOCLAIM", "XSETID", "XACK", "XREADGROUP", "XDELEX", "XACKDEL", "XCFGSET"]
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
    let mut dropped_condition = false;
    let mut i = 3;
    while i < args.len() {
        let o = args[i];
        let up = o.to_ascii_uppercase();
        match &up[..] {
            b"NX" | b"XX" => cond = Some(o),
            // The master wrote, so a compare-and-set condition held: where the
            // destination has none, it goes.
            b"IFEQ" | b"IFNE" | b"IFDEQ" | b"IFDNE" if i + 1 < args.len() && !p.has_set_ifeq() => {
                dropped_condition = true;
                i += 1;
            }
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
    let needs_rewrite = (absolute && !p.has_set_abs_expiry())
        || (keepttl && !p.has_keepttl())
        || (get && !p.has_set_get())
        || dropped_condition;
    if !needs_rewrite {
        return Adapted::AsIs;
    }
    if keepttl && !p.has_keepttl() {
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
    if keepttl {
        set.push(b"KEEPTTL".to_vec());
    }
    let mut out = Vec::new();
    match expiry {
        Some((o, v)) if absolute && !p.has_set_abs_expiry() => {
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

    fn valkey(v: (u32, u32, u32)) -> Profile {
        Profile { valkey: true, server: format!("Valkey {}.{}.{}", v.0, v.1, v.2), ..profile(v) }
    }

    fn a(words: &str) -> Vec<Vec<u8>> {
        words.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    fn adapted(words: &str, p: &Profile) -> Adapted {
        let args = a(words);
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        adapt(&args, p)
    }

    #[test]
    fn redis_8_commands_into_servers_without_them() {
        let (r86, r80, r70, v91, v81) = (profile((8, 6, 3)), profile((8, 0, 6)), profile((7, 0, 15)), valkey((9, 1, 2)), valkey((8, 1, 1)));
        // HSETEX: as is where it exists; HSET (+ HPEXPIREAT) elsewhere.
        let h = "HSETEX h FNX PXAT 1796425672592 FIELDS 2 a 1 b 2";
        assert_eq!(adapted(h, &r80), Adapted::AsIs);
        assert_eq!(adapted(h, &v91), Adapted::AsIs);
        assert!(matches!(adapted(h, &v81), Adapted::Partly(c, _) if c == vec![a("HSET h a 1 b 2")]), "no field TTLs on Valkey 8");
        assert!(matches!(adapted(h, &r70), Adapted::Partly(c, _) if c == vec![a("HSET h a 1 b 2")]));
        let p74 = profile((7, 4, 1));
        assert_eq!(words(&adapted(h, &p74)), ["HSET h a 1 b 2", "HPEXPIREAT h 1796425672592 FIELDS 2 a b"]);
        assert_eq!(words(&adapted("HSETEX h KEEPTTL FIELDS 1 a 11.5", &v81)), ["HSET h a 11.5"]);
        assert_eq!(words(&adapted("HSETEX h FIELDS 1 e 5", &r70)), ["HSET h e 5"]);
        assert!(matches!(adapted("HSETEX h KEEPTTL FIELDS 1 a 1", &p74), Adapted::Unsupported(_)));
        // SET ... IFEQ: the condition goes where there is none.
        assert_eq!(adapted("SET k v2 IFEQ v1", &r86), Adapted::AsIs);
        assert_eq!(adapted("SET k v2 IFEQ v1", &v81), Adapted::AsIs);
        assert_eq!(words(&adapted("SET k v2 IFEQ v1", &r70)), ["SET k v2"]);
        assert_eq!(words(&adapted("SET k v2 IFEQ v1 PXAT 5000", &profile((5, 0, 6)))), ["SET k v2", "PEXPIREAT k 5000"]);
        assert_eq!(words(&adapted("SET k v2 IFEQ v1 PXAT 5000", &r70)), ["SET k v2 PXAT 5000"]);
        // DELEX without a condition is DEL.
        assert_eq!(adapted("DELEX k", &r86), Adapted::AsIs);
        assert_eq!(words(&adapted("DELEX k", &v91)), ["DEL k"]);
        // MSETEX: a SET per key.
        assert_eq!(adapted("MSETEX 2 a 1 b 2 PXAT 9000", &v91), Adapted::AsIs);
        assert_eq!(words(&adapted("MSETEX 2 a 1 b 2 PXAT 9000", &v81)), ["SET a 1 PXAT 9000", "SET b 2 PXAT 9000"]);
        assert_eq!(words(&adapted("MSETEX 1 a 1", &r70)), ["SET a 1"]);
        assert_eq!(words(&adapted("MSETEX 1 a 1 PXAT 9000", &profile((3, 2, 6)))), ["SET a 1", "PEXPIREAT a 9000"]);
        // XADD ... IDMP: the producer part goes; a duplicate (id still *) is nothing.
        assert_eq!(words(&adapted("XADD s IDMP p1 iid-1 1796325673872-0 f v", &r86)), ["XADD s 1796325673872-0 f v"]);
        assert_eq!(adapted("XADD s IDMP p1 iid-1 * f v", &r86), Adapted::Instead(vec![]));
        assert_eq!(words(&adapted("XADD s IDMP p1 iid-1 1796325673872-0 f v", &v91)), ["XADD s 1796325673872-0 f v"]);
        assert_eq!(adapted("XADD s IDMP p1 iid-1 * f v", &r80), Adapted::Instead(vec![]));
        assert_eq!(words(&adapted("XADD s IDMPAUTO p2 5-0 f v", &r70)), ["XADD s 5-0 f v"]);
        assert_eq!(words(&adapted("XADD s KEEPREF MAXLEN = 1 1-4 a 4", &r80)), ["XADD s MAXLEN = 1 1-4 a 4"]);
        assert_eq!(adapted("XADD s MAXLEN ~ 10 1-4 a 4", &r70), Adapted::AsIs);
        assert!(matches!(adapted("XADD s DELREF MAXLEN 1 1-4 a 4", &r80), Adapted::Unsupported(_)));
        assert!(matches!(adapted("XCFGSET s IDMP-DURATION 300 IDMP-MAXSIZE 50", &v91), Adapted::Unsupported(_)));
        // XDELEX / XACKDEL.
        assert_eq!(words(&adapted("XDELEX s KEEPREF IDS 1 1-1", &r80)), ["XDEL s 1-1"]);
        assert_eq!(words(&adapted("XACKDEL s g IDS 2 1-2 1-3", &v91)), ["XACK s g 1-2 1-3", "XDEL s 1-2 1-3"]);
        assert!(matches!(adapted("XACKDEL s g DELREF IDS 1 1-2", &v91), Adapted::Unsupported(_)));
        assert!(matches!(adapted("XDELEX s IDS 1 1-1", &profile((3, 2, 6))), Adapted::Unsupported(_)), "no streams");
        // Vector sets.
        assert_eq!(adapted("VADD vs VALUES 3 1 2 3 e1", &r80), Adapted::AsIs);
        assert!(matches!(adapted("VADD vs VALUES 3 1 2 3 e1", &v91), Adapted::Unsupported(_)));
        assert!(matches!(adapted("VREM vs e1", &r70), Adapted::Unsupported(_)));
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
