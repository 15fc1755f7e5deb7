//! Round trips against live servers, for every version in `CI_VERSIONS`:
//!
//! 1. a real server of the version is loaded with the fixture dataset
//!    (testdata/tools/make_fixture.py) plus big keys written from here, so that the
//!    decoder's chunking runs on live data; the server then `SAVE`s;
//! 2. the library decodes that dump.rdb to JSON Lines, which must hold exactly the
//!    logical content the same server reports (testdata/tools/dump_expected.py);
//! 3. the library encodes the same dump.rdb as RESP commands (`CommandWriter`), which
//!    are piped into a second, empty server of the same version; its logical content
//!    must equal the first server's, except for the one thing no command can express
//!    (pending entries of deleted messages: `drop_pending_of_deleted_entries`); no
//!    command may get an error reply. This is done twice, with the decoder's
//!    default chunks and with 7-element chunks (every collection, pending entries list
//!    and consumer split over many commands).
//!
//! Some variants run with `maxmemory-policy allkeys-lru` / `allkeys-lfu` so that the
//! RDB carries the IDLE / FREQ opcodes before every key (`variant`).

mod common;
mod logical;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Cursor, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{command, read_reply, repo_root, run_python, Client, RedisServer, Reply, CI_VERSIONS};
use logical::Logical;
use redis_ferry::output::commands::CommandWriter;
use redis_ferry::output::jsonl::JsonlWriter;
use redis_ferry::rdb::{Checksum, Chunk, DecoderOptions, RdbReader, Record};
use serde_json::Value;

/// 2100-01-01T00:00:00Z: the fixtures' expiries are whole seconds after it, and so are
/// the ones set here (dump_expected.py --snap-expire-ms 1000 is then exact on servers
/// without PEXPIRETIME).
const E: i64 = 4_102_444_800;

/// (major, minor) of a version string.
fn major_minor(version: &str) -> (u32, u32) {
    let mut p = version.split('.').map(|n| n.parse::<u32>().unwrap());
    (p.next().unwrap(), p.next().unwrap())
}

/// Which per-key LRU/LFU opcode a variant makes the server write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eviction {
    /// Default `noeviction`: neither IDLE nor FREQ.
    None,
    /// `allkeys-lru`: an IDLE opcode (0xF8) before every key (RDB 9+).
    Idle,
    /// `allkeys-lfu`: a FREQ opcode (0xF9) before every key (RDB 9+).
    Freq,
}

/// Server configuration of the source server per version. Between them the variants
/// exercise both IDLE and FREQ live (the policies exist from 4.0, the opcodes are
/// written from RDB 9 = 5.0). `enable-debug-command` only exists from 7.0 (older
/// servers refuse to start with it); make_fixture.py needs DEBUG there.
fn variant(version: &str) -> (Vec<(&'static str, &'static str)>, Eviction) {
    match major_minor(version) {
        (2, _) | (3, _) => (vec![], Eviction::None),
        (5, 0) => (vec![("maxmemory-policy", "allkeys-lru")], Eviction::Idle),
        (6, _) => (vec![("maxmemory-policy", "allkeys-lfu")], Eviction::Freq),
        (7, _) => (
            vec![("enable-debug-command", "yes"), ("maxmemory-policy", "allkeys-lfu")],
            Eviction::Freq,
        ),
        _ => panic!("roundtrip: no variant for Redis {version}"),
    }
}

// ---------------------------------------------------------------------------------
// Loading the dataset

/// Adds big keys (so that every collection type is cut into several decoder chunks)
/// and a few small ones in db 3 (so that even 2.8, without streams, has > 100 keys).
fn load_extra_keys(c: &mut Client, version: &str) {
    let (major, _) = major_minor(version);
    let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();

    // A list of 5,000 elements, integers and strings mixed.
    let elems: Vec<String> = (0..5000)
        .map(|i| {
            if i % 4 == 0 {
                (i as i64 * 7919 - 9_000_000).to_string()
            } else {
                format!("list-elem-{i:05}-{}", "x".repeat(i % 50))
            }
        })
        .collect();
    for part in elems.chunks(500) {
        let mut cmd = vec!["RPUSH".to_string(), "rt:big:list".to_string()];
        cmd.extend(part.iter().cloned());
        cmds.push(command(&cmd));
    }

    // A set of 3,000 non-integer members (so a hash table, never an intset).
    let members: Vec<String> = (0..3000).map(|i| format!("set-member-{i:05}-{}", "y".repeat(i % 13))).collect();
    for part in members.chunks(500) {
        let mut cmd = vec!["SADD".to_string(), "rt:big:set".to_string()];
        cmd.extend(part.iter().cloned());
        cmds.push(command(&cmd));
    }

    // A zset of 3,000 members with fractional scores (some shared).
    let mut zargs = Vec::new();
    for i in 0..3000u32 {
        let score = if i % 10 == 0 { 0.5 } else { f64::from(i) / 7.0 - 200.0 + 1.0 / f64::from(i + 3) };
        // Display of f64 is the shortest text that parses back to the same double.
        zargs.push(score.to_string());
        zargs.push(format!("zset-member-{i:05}"));
    }
    for part in zargs.chunks(1000) {
        let mut cmd = vec!["ZADD".to_string(), "rt:big:zset".to_string()];
        cmd.extend(part.iter().cloned());
        cmds.push(command(&cmd));
    }

    // A hash of 3,000 fields, with an expiry.
    let mut hargs = Vec::new();
    for i in 0..3000i64 {
        hargs.push(format!("field-{i:05}"));
        hargs.push(if i % 3 == 0 { (i * 31337 - 50_000_000).to_string() } else { format!("value-{i}-{}", "z".repeat((i % 20) as usize)) });
    }
    for part in hargs.chunks(1000) {
        // HMSET: multi-field HSET only exists from 4.0.
        let mut cmd = vec!["HMSET".to_string(), "rt:big:hash".to_string()];
        cmd.extend(part.iter().cloned());
        cmds.push(command(&cmd));
    }
    cmds.push(command(&["PEXPIREAT".to_string(), "rt:big:hash".to_string(), ((E + 7777) * 1000).to_string()]));

    // db 3: small keys of every type, some with whole-second expiries.
    cmds.push(command(&["SELECT", "3"]));
    for i in 0..12 {
        cmds.push(command(&["SET".to_string(), format!("rt:small:str:{i}"), format!("small string {i}")]));
        if i % 2 == 0 {
            cmds.push(command(&["EXPIREAT".to_string(), format!("rt:small:str:{i}"), (E + 100 * i).to_string()]));
        }
        cmds.push(command(&["HMSET".to_string(), format!("rt:small:hash:{i}"), "a".into(), i.to_string(), "b".into(), "bee".into()]));
        cmds.push(command(&["SADD".to_string(), format!("rt:small:intset:{i}"), i.to_string(), (i * 1000).to_string(), "-5".into()]));
        cmds.push(command(&["ZADD".to_string(), format!("rt:small:zset:{i}"), "1.5".into(), "m1".into(), format!("-{i}.25"), "m2".into()]));
    }
    cmds.push(command(&["SELECT", "0"]));

    let replies = c.pipeline(cmds);
    if let Some(e) = replies.iter().find(|r| r.is_error()) {
        panic!("{version}: loading the extra keys: {e:?}");
    }

    if major >= 5 {
        // A stream of 3,000 entries over many listpack nodes: most entries have the
        // master entry's fields (SAMEFIELDS flag), every 7th has its own.
        let key = "rt:big:stream";
        let mut cmds = Vec::new();
        for i in 0..3000u64 {
            let id = format!("{}-{}", 1_600_000_000_000u64 + i / 2, i % 2);
            let cmd: Vec<String> = if i % 7 == 3 {
                vec!["XADD".into(), key.into(), id, "other".into(), format!("o{i}"), "n".into(), i.to_string(), "x".into(), "".into()]
            } else {
                vec!["XADD".into(), key.into(), id, "sensor".into(), format!("s-{}", i % 17), "temp".into(), (i as i64 - 1500).to_string()]
            };
            cmds.push(command(&cmd));
        }
        // A group with 500 pending entries over 3 consumers, and one with none.
        cmds.push(command(&["XGROUP", "CREATE", key, "grp", "0"]));
        cmds.push(command(&["XGROUP", "CREATE", key, "idle-grp", "$"]));
        for (consumer, count) in [("c1", "200"), ("c2", "200"), ("c3", "100")] {
            cmds.push(command(&["XREADGROUP", "GROUP", "grp", consumer, "COUNT", count, "STREAMS", key, ">"]));
        }
        let replies = c.pipeline(cmds);
        if let Some(e) = replies.iter().find(|r| r.is_error()) {
            panic!("{version}: loading the big stream: {e:?}");
        }
        // Redelivered entries, for delivery counts other than 1.
        let r = c.cmd_str(&["XCLAIM", key, "grp", "c3", "0", "1600000000000-0", "1600000000000-1", "JUSTID"]);
        assert_eq!(r.as_array().len(), 2, "{version}: XCLAIM {r:?}");
        let r = c.cmd_str(&["XPENDING", key, "grp"]);
        assert_eq!(r.as_array()[0].as_int(), 500, "{version}: XPENDING {r:?}");

        // A consumer whose only pending entry was deleted from the stream, next to one
        // whose entries still exist. The deleted entry's pending record cannot be
        // recreated by commands (see drop_pending_of_deleted_entries), but the consumer
        // itself can, and must still exist on the target.
        let key = "rt:stream:ghost-owner";
        let mut cmds = Vec::new();
        for i in 1..=5 {
            cmds.push(command(&["XADD".to_string(), key.into(), format!("{i}-0"), "f".into(), i.to_string()]));
        }
        cmds.push(command(&["XGROUP", "CREATE", key, "g", "0"]));
        cmds.push(command(&["XREADGROUP", "GROUP", "g", "ghost", "COUNT", "1", "STREAMS", key, ">"]));
        cmds.push(command(&["XREADGROUP", "GROUP", "g", "live", "COUNT", "2", "STREAMS", key, ">"]));
        cmds.push(command(&["XDEL", key, "1-0"]));
        let replies = c.pipeline(cmds);
        if let Some(e) = replies.iter().find(|r| r.is_error()) {
            panic!("{version}: loading {key}: {e:?}");
        }
    }
}

// ---------------------------------------------------------------------------------
// Decoding

/// What the decoder saw in a file: counts per encoding, opcode, aux field, ...
#[derive(Debug, Default)]
struct Seen {
    counts: BTreeMap<String, usize>,
    keys: usize,
    /// Most chunks one key's value came in.
    max_chunks: usize,
    checksum_verified: bool,
}

impl Seen {
    fn add(&mut self, what: String) {
        *self.counts.entry(what).or_default() += 1;
    }

    fn count(&self, what: &str) -> usize {
        self.counts.get(what).copied().unwrap_or(0)
    }

    fn show(&self) -> String {
        let parts: Vec<String> = self.counts.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        parts.join(", ")
    }
}

/// Decodes an RDB to JSON Lines through the library, as `decode --format jsonl` does,
/// and notes what it contained.
fn decode_jsonl(rdb: &[u8], opts: DecoderOptions) -> (String, Seen) {
    let mut reader = RdbReader::with_options(rdb, opts);
    let mut out = Vec::new();
    let mut w = JsonlWriter::new(&mut out);
    let mut seen = Seen::default();
    let mut chunks = 0;
    while let Some(r) = reader.next_record().unwrap_or_else(|e| panic!("decoding: {e}")) {
        w.record(&r).unwrap();
        match &r {
            Record::Header(v) => seen.add(format!("header:{v}")),
            Record::Aux { key, .. } => seen.add(format!("aux:{}", String::from_utf8_lossy(key))),
            Record::SelectDb { .. } => seen.add("opcode:selectdb".into()),
            Record::ResizeDb { .. } => seen.add("opcode:resizedb".into()),
            Record::Function { .. } => seen.add("opcode:function2".into()),
            Record::Key(k) => {
                seen.keys += 1;
                chunks = 0;
                seen.add(format!("type:{}", k.encoding.name()));
                if k.expire_at_ms.is_some() {
                    seen.add("opcode:expiretime".into());
                }
                if k.idle_seconds.is_some() {
                    seen.add("opcode:idle".into());
                }
                if k.lfu_freq.is_some() {
                    seen.add("opcode:freq".into());
                }
            }
            Record::Value(c) => {
                chunks += 1;
                seen.max_chunks = seen.max_chunks.max(chunks);
                if let Chunk::StreamGroup(_) = c {
                    seen.add("stream:group".into());
                }
            }
            Record::End(c) => seen.checksum_verified = matches!(c, Checksum::Verified(_)),
            Record::KeyEnd => {}
            other => seen.add(format!("other:{other:?}")),
        }
    }
    w.flush().unwrap();
    drop(w);
    (String::from_utf8(out).unwrap(), seen)
}

/// Encodes an RDB as RESP commands through the library, as `decode --format resp` does.
fn encode_commands(rdb: &[u8], opts: DecoderOptions) -> Vec<u8> {
    let mut reader = RdbReader::with_options(rdb, opts);
    let mut out = Vec::new();
    let mut w = CommandWriter::new(&mut out);
    while let Some(r) = reader.next_record().unwrap_or_else(|e| panic!("decoding: {e}")) {
        w.record(&r).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    out
}

// ---------------------------------------------------------------------------------
// Piping commands into a server

/// One command of the generated stream, with the db it runs in.
struct SentCommand {
    db: u64,
    args: Vec<Vec<u8>>,
}

impl SentCommand {
    fn name(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.args[i]).to_ascii_uppercase()
    }

    fn show(&self) -> String {
        let words: Vec<String> = self
            .args
            .iter()
            .take(8)
            .map(|a| {
                let s = String::from_utf8_lossy(a);
                if s.chars().count() > 60 {
                    format!("{}...", s.chars().take(60).collect::<String>())
                } else {
                    s.into_owned()
                }
            })
            .collect();
        format!("db {}: {}{}", self.db, words.join(" "), if self.args.len() > 8 { " ..." } else { "" })
    }
}

/// Splits the generated bytes into commands; each must be a RESP array of bulk strings,
/// which also proves the stream is well-formed before a server sees it.
fn parse_commands(bytes: &[u8]) -> Vec<SentCommand> {
    let mut cur = Cursor::new(bytes);
    let mut db = 0;
    let mut out = Vec::new();
    while (cur.position() as usize) < bytes.len() {
        let at = cur.position();
        let reply = read_reply(&mut cur).unwrap_or_else(|e| panic!("generated commands: bad RESP at byte {at}: {e}"));
        let args: Vec<Vec<u8>> = match reply {
            Reply::Array(Some(items)) if !items.is_empty() => items
                .into_iter()
                .map(|i| match i {
                    Reply::Bulk(Some(b)) => b,
                    other => panic!("generated commands: non-bulk argument {other:?} at byte {at}"),
                })
                .collect(),
            other => panic!("generated commands: not a command at byte {at}: {other:?}"),
        };
        if args[0].eq_ignore_ascii_case(b"SELECT") {
            db = String::from_utf8_lossy(&args[1]).parse().expect("SELECT db");
        }
        out.push(SentCommand { db, args });
    }
    out
}

/// Sends `bytes` (which hold `n` commands) over a raw socket, as `redis-cli --pipe`
/// does, followed by a PING; reads every reply, and the PING's +PONG last, so all
/// commands are known to have run. Returns the replies to the `n` commands.
fn pipe(port: u16, bytes: &[u8], n: usize) -> Vec<Reply> {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect for pipe");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut payload = bytes.to_vec();
    payload.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    // Write from another thread while reading here, so neither side's buffers can
    // fill up and stall the other. The socket is not shut down for writing: servers
    // drop a client on EOF, even with replies still queued.
    let mut w = stream.try_clone().unwrap();
    let writer = thread::spawn(move || w.write_all(&payload));
    let mut r = BufReader::with_capacity(1 << 16, stream);
    let mut replies = Vec::with_capacity(n);
    for i in 0..n {
        let reply = read_reply(&mut r).unwrap_or_else(|e| panic!("pipe: reading reply {i} of {n}: {e}"));
        replies.push(reply);
    }
    let last = read_reply(&mut r).unwrap_or_else(|e| panic!("pipe: reading the final PING's reply: {e}"));
    assert_eq!(last, Reply::Status("PONG".into()), "pipe: the reply after {n} commands is not PING's");
    writer.join().unwrap().expect("pipe: writing the commands");
    replies
}

// ---------------------------------------------------------------------------------
// Logical dumps

fn dump_expected(server: &RedisServer, out: &Path) -> String {
    let script = repo_root().join("testdata/tools/dump_expected.py");
    let port = server.port().to_string();
    // All expiries in this dataset are whole seconds except ttl:millis, which only
    // exists on 7.0+, where PEXPIRETIME makes the dump exact anyway: so snapping the
    // estimates of older servers to whole seconds makes their dump exact too.
    run_python(&script, &["--port", &port, "--out", out.to_str().unwrap(), "--snap-expire-ms", "1000"]);
    std::fs::read_to_string(out).unwrap()
}

/// The logical-dump (JSON) name of a byte string.
fn json_name(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.starts_with("base64:") => s.to_string(),
        _ => format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

fn check(version: &str) {
    let start = Instant::now();
    let (config, eviction) = variant(version);
    let Some(source) = RedisServer::start_with(version, &config) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut problems: Vec<String> = Vec::new();

    // 1-2. Load the fixture dataset and the big keys, then snapshot.
    let port = source.port().to_string();
    run_python(&repo_root().join("testdata/tools/make_fixture.py"), &["--port", &port, "--flush"]);
    let mut c = source.client();
    load_extra_keys(&mut c, version);
    c.cmd_str(&["SAVE"]).ok();
    let rdb = std::fs::read(source.rdb_path()).expect("dump.rdb after SAVE");

    // 3. Decode to JSON Lines (and again in tiny chunks: same output).
    let (jsonl, seen) = decode_jsonl(&rdb, DecoderOptions::default());
    eprintln!("{version}: {} keys, {} bytes; {}", seen.keys, rdb.len(), seen.show());
    assert!(seen.checksum_verified, "{version}: the RDB checksum was not verified");
    assert!(seen.max_chunks >= 5, "{version}: no key came in 5+ chunks (max {}): chunking not exercised", seen.max_chunks);
    match eviction {
        Eviction::None => assert_eq!(seen.count("opcode:idle") + seen.count("opcode:freq"), 0, "{version}"),
        Eviction::Idle => assert_eq!(seen.count("opcode:idle"), seen.keys, "{version}: IDLE before every key"),
        Eviction::Freq => assert_eq!(seen.count("opcode:freq"), seen.keys, "{version}: FREQ before every key"),
    }
    let (small_jsonl, _) =
        decode_jsonl(&rdb, DecoderOptions { chunk_elements: 3, chunk_bytes: 100, ..DecoderOptions::default() });
    if small_jsonl != jsonl {
        problems.push(format!("{version}: the JSON Lines output depends on the chunk size"));
    }
    let got = Logical::from_jsonl(&jsonl);
    if major_minor(version) < (7, 0) {
        // dump_expected.py --snap-expire-ms 1000 (below) is exact only if every expiry is
        // a whole second: check that in the file itself. (7.0+ has PEXPIRETIME, exact.)
        for (db, keys) in &got.dbs {
            for (key, k) in keys {
                if let Some(ms) = k["expire_at_ms"].as_i64() {
                    assert_eq!(ms % 1000, 0, "{version}: db {db} {key:?} expires at {ms} ms, not a whole second");
                }
            }
        }
    }
    if major_minor(version) >= (5, 0) {
        let streams: usize = seen.counts.iter().filter(|(k, _)| k.starts_with("type:stream")).map(|(_, n)| n).sum();
        assert!(streams >= 10 && seen.count("stream:group") >= 5, "{version}: streams missing: {}", seen.show());
    }
    if major_minor(version) >= (7, 0) {
        assert_eq!(seen.count("opcode:function2"), 2, "{version}: function libraries: {}", seen.show());
    }

    // 4. The source server's own view of its data.
    let expected_text = dump_expected(&source, &tmp.path().join("expected.json"));
    let expected = Logical::from_expected(&expected_text);
    assert!(expected.key_count() > 100, "{version}: only {} keys: the dataset did not load", expected.key_count());
    assert_eq!(expected.expire_precision_ms, 0, "{version}: expected.json is not exact");
    let diffs = expected.diff(&got, expected.expire_precision_ms);
    if !diffs.is_empty() {
        problems.push(format!(
            "{version}: decoded RDB differs from the server ({} differences):\n{}",
            diffs.len(),
            diffs.join("\n")
        ));
    }

    // 5. RESP round trip into an empty server of the same version: default chunks, then
    //    tiny chunks (so every collection, PEL and consumer is split over commands).
    let Some(target) = RedisServer::start(version) else {
        return;
    };
    for (what, opts) in [
        ("default chunks", DecoderOptions::default()),
        ("7-element chunks", DecoderOptions { chunk_elements: 7, ..DecoderOptions::default() }),
    ] {
        let mut t = target.client();
        t.cmd_str(&["FLUSHALL"]).ok();
        if major_minor(version) >= (7, 0) {
            t.cmd_str(&["FUNCTION", "FLUSH"]).ok();
        }
        let bytes = encode_commands(&rdb, opts);
        let cmds = parse_commands(&bytes);
        let replies = pipe(target.port(), &bytes, cmds.len());
        // (db, key, group, id) of XCLAIMs the server answered with nothing.
        let mut skipped_claims = BTreeSet::new();
        for (cmd, reply) in cmds.iter().zip(&replies) {
            if cmd.name(0) == "XCLAIM" && matches!(reply, Reply::Array(Some(ids)) if ids.is_empty()) {
                skipped_claims.insert((
                    cmd.db,
                    json_name(&cmd.args[1]),
                    json_name(&cmd.args[2]),
                    String::from_utf8_lossy(&cmd.args[5]).into_owned(),
                ));
            }
            if let Reply::Error(err) = reply {
                problems.push(format!("{version} ({what}): {} -> -{err}", cmd.show()));
            }
        }
        let target_text = dump_expected(&target, &tmp.path().join("target.json"));
        let target_logical = Logical::from_expected(&target_text);
        let mut want = Logical::from_expected(&expected_text);
        let unsent = drop_pending_of_deleted_entries(&mut want, &skipped_claims);
        if !unsent.is_empty() {
            problems.push(format!(
                "{version} ({what}): no XCLAIM was sent for these pending entries of deleted stream entries:\n{}",
                unsent.join("\n")
            ));
        }
        let diffs = want.diff(&target_logical, 0);
        eprintln!(
            "{version} ({what}): {} commands, {} bytes, {} XCLAIMs of deleted entries skipped by the server, \
             {} differences",
            cmds.len(),
            bytes.len(),
            skipped_claims.len(),
            diffs.len(),
        );
        if !diffs.is_empty() {
            let details = value_diffs(&want, &target_logical);
            problems.push(format!(
                "{version} ({what}): server loaded from the RESP commands differs from the source ({} differences):\n{}",
                diffs.len(),
                diffs.join("\n")
            ) + &details);
        }
    }

    eprintln!("{version}: round trips took {:?}", start.elapsed());
    assert!(problems.is_empty(), "{version}: {} problem(s):\n{}", problems.len(), problems.join("\n\n"));
}

/// Where the values of keys present on both sides differ, path by path (the diff of
/// `Logical` cuts long values, which hides where streams differ).
fn value_diffs(want: &Logical, got: &Logical) -> String {
    let mut lines = Vec::new();
    for (db, keys) in &want.dbs {
        for (key, a) in keys {
            if let Some(b) = got.dbs.get(db).and_then(|d| d.get(key)) {
                json_diff(&format!("db {db} {key:?}"), &a["value"], &b["value"], &mut lines);
            }
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    let more = lines.len().saturating_sub(40);
    lines.truncate(40);
    format!("\nin detail:\n  {}{}", lines.join("\n  "), if more > 0 { format!("\n  ... {more} more") } else { String::new() })
}

fn json_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let names: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for n in names {
                json_diff(&format!("{path}.{n}"), x.get(n).unwrap_or(&Value::Null), y.get(n).unwrap_or(&Value::Null), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                json_diff(&format!("{path}[{i}]"), p, q, out);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            // Different lengths: name the elements only one side has.
            let only = |p: &Vec<Value>, q: &Vec<Value>| -> Vec<String> {
                p.iter().filter(|e| !q.contains(e)).map(|e| e.to_string()).collect()
            };
            out.push(format!(
                "{path}: {} vs {} elements; only expected: [{}]; only got: [{}]",
                x.len(),
                y.len(),
                only(x, y).join(", "),
                only(y, x).join(", ")
            ));
        }
        _ if a != b => out.push(format!("{path}: expected {a}, got {b}")),
        _ => {}
    }
}

/// Removes from `want` the pending entries whose stream entry was deleted (XDEL while
/// pending), and lowers their consumers' pending counts, where the XCLAIM that would
/// recreate them was sent and answered with an empty array.
///
/// Server behaviour (5.0 to 7.x, `xclaimCommand` in t_stream.c): `XCLAIM ... FORCE` only
/// creates a pending entry for an id that is still in the stream ("Item must exist for
/// us to create a NACK for it"), and no other command creates one; so no command stream
/// can recreate these (Redis's own AOF rewrite, which emits the same XCLAIM FORCE, loses
/// them too). Only the entry goes: its consumer stays expected (CommandWriter creates
/// every consumer with XREADGROUP before claiming for it).
///
/// Returns the removed entries for which no such XCLAIM was seen (a writer bug).
fn drop_pending_of_deleted_entries(
    want: &mut Logical,
    skipped_claims: &BTreeSet<(u64, String, String, String)>,
) -> Vec<String> {
    let mut unsent = Vec::new();
    for (db, keys) in want.dbs.iter_mut() {
        for (key, k) in keys.iter_mut() {
            if k["type"] != "stream" {
                continue;
            }
            let value = &mut k["value"];
            let live: BTreeSet<String> =
                value["entries"].as_array().unwrap().iter().map(|e| e[0].as_str().unwrap().to_string()).collect();
            for g in value["groups"].as_array_mut().unwrap() {
                let group = g["name"].as_str().unwrap().to_string();
                let pending = g["pending"].as_array_mut().unwrap();
                let (gone, kept): (Vec<Value>, Vec<Value>) =
                    pending.drain(..).partition(|p| !live.contains(p[0].as_str().unwrap()));
                *pending = kept;
                for p in gone {
                    let id = p[0].as_str().unwrap().to_string();
                    if !skipped_claims.contains(&(*db, key.clone(), group.clone(), id.clone())) {
                        unsent.push(format!("db {db} {key:?} group {group:?}: {p}"));
                    }
                    let consumer = g["consumers"]
                        .as_array_mut()
                        .unwrap()
                        .iter_mut()
                        .find(|c| c["name"] == p[1])
                        .unwrap_or_else(|| panic!("{key}: pending entry {p} of an unknown consumer"));
                    let n = consumer["pending"].as_i64().unwrap();
                    consumer["pending"] = Value::from(n - 1);
                }
            }
        }
    }
    unsent
}

macro_rules! roundtrip {
    ($($name:ident: $version:literal;)*) => {
        $( #[test] fn $name() { check($version); } )*

        /// Every CI version has a round-trip test above.
        #[test]
        fn every_ci_version_has_a_roundtrip_test() {
            assert_eq!(CI_VERSIONS, [$($version),*]);
        }
    };
}

roundtrip! {
    redis_2_8_17: "2.8.17";
    redis_3_0_5: "3.0.5";
    redis_3_2_6: "3.2.6";
    redis_5_0_6: "5.0.6";
    redis_6_2_14: "6.2.14";
    redis_7_0_15: "7.0.15";
}
