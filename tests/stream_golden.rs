//! Golden tests for the replication command stream: every
//! testdata/replication/<version>/stream*.bin, captured from a real master, read through
//! `CommandReader` and `CommandStream` and checked against the decoded table in the
//! matching notes.txt (offsets, lengths, command words), with the db followed through
//! the SELECTs and MULTI … EXEC grouped into one transaction.

use std::path::{Path, PathBuf};

use redis_ferry::replica::stream::{CommandStream, ControlKind, StreamLimits, TxCommand, Unit};
use redis_ferry::resp::reader::{CommandReader, ReaderLimits};

/// One row of a notes.txt "decoded command stream" table.
#[derive(Debug, Clone)]
struct Row {
    offset: u64,
    len: u64,
    /// The command words; for rows whose text has a double quote, only the name.
    words: Vec<Vec<u8>>,
    /// Only the name can be checked.
    name_only: bool,
    inline: bool,
}

/// One `== <file>: ...` section of a notes.txt.
#[derive(Debug)]
struct Capture {
    bin: PathBuf,
    range: (u64, u64),
    rows: Vec<Row>,
}

fn replication_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/replication")
}

/// Splits a shell-quoted line the way Python's `shlex.quote` output reads back: bare
/// words, '...' and "..." (no escapes inside either), concatenated.
fn shell_split(line: &str) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => push_char(cur.get_or_insert_with(Vec::new), c),
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.get_or_insert_with(Vec::new);
            }
            (None, ' ') => words.extend(cur.take()),
            (None, c) => push_char(cur.get_or_insert_with(Vec::new), c),
        }
    }
    assert!(quote.is_none(), "unterminated quote in {line:?}");
    words.extend(cur);
    words
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut b = [0; 4];
    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
}

/// Decodes a Python bytes literal `b'...'`.
fn py_bytes(lit: &str) -> Vec<u8> {
    let body = lit.strip_prefix("b'").and_then(|s| s.strip_suffix('\'')).unwrap_or_else(|| panic!("not b'...': {lit}"));
    let mut out = Vec::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            push_char(&mut out, c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some('\'') => out.push(b'\''),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap());
            }
            other => panic!("escape \\{other:?} in {lit}"),
        }
    }
    out
}

fn parse_row(line: &str) -> Row {
    let mut parts = line.trim_start().splitn(2, ' ');
    let offset = parts.next().unwrap().parse().unwrap();
    let rest = parts.next().unwrap().trim_start();
    let mut parts = rest.splitn(2, ' ');
    let len = parts.next().unwrap().parse().unwrap();
    let text = parts.next().unwrap().trim_start();
    if let Some(lit) = text.strip_prefix("INLINE command ") {
        let bytes = py_bytes(lit);
        assert_eq!(bytes.len() as u64, len, "{line}");
        let line = bytes.strip_suffix(b"\n").unwrap();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let words = line.split(|&b| b == b' ' || b == b'\t').filter(|w| !w.is_empty()).map(<[u8]>::to_vec).collect();
        return Row { offset, len, words, name_only: false, inline: true };
    }
    let name_only = text.contains('"');
    let words = if name_only {
        vec![text.split(' ').next().unwrap().as_bytes().to_vec()]
    } else {
        shell_split(text)
    };
    Row { offset, len, words, name_only, inline: false }
}

/// Parses `[  start ..  end)  command stream, ...`.
fn parse_range(line: &str) -> (u64, u64) {
    let inner = line.trim_start().strip_prefix('[').unwrap();
    let (range, _) = inner.split_once(')').unwrap();
    let (a, b) = range.split_once("..").unwrap();
    (a.trim().parse().unwrap(), b.trim().parse().unwrap())
}

fn captures() -> Vec<Capture> {
    let mut out = Vec::new();
    let mut versions: Vec<_> = std::fs::read_dir(replication_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    versions.sort();
    for dir in versions {
        let notes = std::fs::read_to_string(dir.join("notes.txt")).unwrap();
        let mut current: Option<Capture> = None;
        let mut in_table = false;
        for line in notes.lines() {
            if let Some(rest) = line.strip_prefix("== ") {
                out.extend(current.take());
                let name = rest.split(':').next().unwrap();
                current = Some(Capture { bin: dir.join(name), range: (0, 0), rows: Vec::new() });
                in_table = false;
                continue;
            }
            let Some(cap) = current.as_mut() else { continue };
            if line.trim_start().starts_with('[') && line.contains("command stream") {
                cap.range = parse_range(line);
            } else if line.starts_with("decoded command stream") {
                in_table = true;
            } else if in_table && line.trim().is_empty() {
                in_table = false;
            } else if in_table {
                cap.rows.push(parse_row(line));
            }
        }
        out.extend(current);
    }
    // Every stream*.bin has its section.
    let mut bins = 0;
    for dir in std::fs::read_dir(replication_dir()).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("stream") && name.ends_with(".bin") {
                bins += 1;
                assert!(out.iter().any(|c| c.bin == p), "no notes section for {}", p.display());
            }
        }
    }
    assert_eq!(bins, out.len());
    assert!(bins >= 7, "only {bins} captures");
    // Exactly these captures have no command stream (the master ends the transfer, or
    // the capture stops after the snapshot); the others are the golden ones.
    let (none, with): (Vec<Capture>, Vec<Capture>) = out.into_iter().partition(|c| {
        let name = c.bin.strip_prefix(replication_dir()).unwrap().to_string_lossy().into_owned();
        NO_STREAM.contains(&name.as_str())
    });
    assert_eq!(none.len(), NO_STREAM.len(), "{NO_STREAM:?}");
    for c in &none {
        assert!(c.range.0 == c.range.1 && c.rows.is_empty(), "{}: listed as having no stream", c.bin.display());
    }
    for c in &with {
        assert!(c.range.1 > c.range.0 && !c.rows.is_empty(), "{}: no range or no rows", c.bin.display());
    }
    with
}

/// Captures whose notes list no command stream: Valkey 9.1.2 asked by a replica that
/// announces no version (it closes the connection when a key needs RDB 80, or sends
/// the RDB 11 snapshot and nothing after it).
const NO_STREAM: [&str; 2] = ["valkey-9.1.2/stream-noversion.bin", "valkey-9.1.2/stream-noversion-nohfe.bin"];

fn stream_bytes(c: &Capture) -> Vec<u8> {
    let bin = std::fs::read(&c.bin).unwrap();
    assert_eq!(bin.len() as u64, c.range.1, "{}: the command stream runs to the end of the file", c.bin.display());
    bin[c.range.0 as usize..c.range.1 as usize].to_vec()
}

#[test]
fn every_frame_matches_the_notes() {
    for c in captures() {
        let name = c.bin.display();
        let bytes = stream_bytes(&c);
        let mut r = CommandReader::new(ReaderLimits::default(), c.range.0);
        r.feed(&bytes);
        let mut rows = c.rows.iter();
        while let Some(f) = r.next_command().unwrap_or_else(|e| panic!("{name}: {e}")) {
            let row = rows.next().unwrap_or_else(|| panic!("{name}: frame at {} not in the notes", f.start_offset()));
            assert_eq!((f.start_offset(), f.wire_len() as u64), (row.offset, row.len), "{name}: {row:?}");
            assert_eq!(f.is_inline(), row.inline, "{name}: {row:?}");
            if row.name_only {
                assert_eq!(f.name(), row.words[0].as_slice(), "{name}: {row:?}");
            } else {
                let args: Vec<Vec<u8>> = f.args().map(<[u8]>::to_vec).collect();
                assert_eq!(args, row.words, "{name}: {row:?}");
            }
        }
        assert!(rows.next().is_none(), "{name}: rows left over");
        assert_eq!((r.offset(), r.buffered()), (c.range.1, 0), "{name}");
    }
}

/// A unit as owned data.
#[derive(Debug, Clone, PartialEq)]
enum Owned {
    Cmd { db: u32, end: u64, args: Vec<Vec<u8>> },
    Tx { start: u64, end: u64, commands: Vec<TxCommand> },
    Control { end: u64, kind: ControlKind },
}

fn units(start: u64, bytes: &[u8], piece: usize) -> (Vec<Owned>, u64, u32) {
    let mut s = CommandStream::new(start, 0, StreamLimits::default());
    let mut out = Vec::new();
    for part in bytes.chunks(piece) {
        s.feed(part);
        while let Some(u) = s.next_unit().unwrap() {
            out.push(match u {
                Unit::Command(c) => Owned::Cmd { db: c.db, end: c.end_offset, args: c.args().map(<[u8]>::to_vec).collect() },
                Unit::Transaction(t) => Owned::Tx { start: t.start_offset, end: t.end_offset, commands: t.commands.to_vec() },
                Unit::Control(c) => Owned::Control { end: c.end_offset, kind: c.kind },
            });
            assert_eq!(s.offset(), out.last().map(end_of).unwrap());
        }
    }
    assert!(!s.in_transaction());
    assert_eq!(s.buffered(), 0);
    (out, s.offset(), s.db())
}

fn end_of(u: &Owned) -> u64 {
    match u {
        Owned::Cmd { end, .. } | Owned::Tx { end, .. } | Owned::Control { end, .. } => *end,
    }
}

fn upper(w: &[u8]) -> Vec<u8> {
    w.to_ascii_uppercase()
}

fn check_args(args: &[Vec<u8>], row: &Row, name: &str) {
    if row.name_only {
        assert_eq!(args[0], row.words[0], "{name}: {row:?}");
    } else {
        assert_eq!(args, row.words.as_slice(), "{name}: {row:?}");
    }
}

#[test]
fn units_match_the_notes() {
    for c in captures() {
        let name = c.bin.display().to_string();
        let bytes = stream_bytes(&c);
        let (units, offset, final_db) = units(c.range.0, &bytes, bytes.len());
        assert_eq!(offset, c.range.1, "{name}");

        // Walk the rows alongside the units, following the db as a replica would.
        let mut rows = c.rows.iter().peekable();
        let mut db = 0;
        let mut prev_end = c.range.0;
        let (mut transactions, mut selects, mut pings) = (0, 0, 0);
        for u in &units {
            match u {
                Owned::Cmd { db: got_db, end, args } => {
                    let row = rows.next().unwrap();
                    assert_eq!((row.offset, row.offset + row.len), (prev_end, *end), "{name}: {row:?}");
                    check_args(args, row, &name);
                    assert_eq!(*got_db, db, "{name}: db of {row:?}");
                }
                Owned::Control { end, kind } => {
                    let row = rows.next().unwrap();
                    assert_eq!((row.offset, row.offset + row.len), (prev_end, *end), "{name}: {row:?}");
                    let cmd = upper(&row.words[0]);
                    match kind {
                        ControlKind::Select(n) => {
                            assert_eq!(cmd, b"SELECT", "{name}: {row:?}");
                            assert_eq!(row.words[1], n.to_string().into_bytes());
                            db = *n;
                            selects += 1;
                        }
                        ControlKind::Ping => {
                            assert_eq!(cmd, b"PING", "{name}: {row:?}");
                            pings += 1;
                        }
                        other => panic!("{name}: unexpected control {other:?} for {row:?}"),
                    }
                }
                Owned::Tx { start, end, commands } => {
                    transactions += 1;
                    let multi = rows.next().unwrap();
                    assert_eq!(upper(&multi.words[0]), b"MULTI", "{name}");
                    assert_eq!((multi.offset, *start), (prev_end, prev_end), "{name}: {multi:?}");
                    let mut at = multi.offset + multi.len;
                    for tc in commands {
                        let mut row = rows.next().unwrap();
                        // Redis 8 and Valkey 9 send a transaction's SELECT inside it
                        // (MULTI, SELECT n, ...): a db change, not one of its commands.
                        if upper(&row.words[0]) == b"SELECT" {
                            assert_eq!(row.offset, at, "{name}: {row:?}");
                            db = String::from_utf8_lossy(&row.words[1]).parse().unwrap();
                            selects += 1;
                            at = row.offset + row.len;
                            row = rows.next().unwrap();
                        }
                        assert_eq!((row.offset, row.offset + row.len), (at, tc.end_offset), "{name}: {row:?}");
                        check_args(&tc.args, row, &name);
                        assert_eq!(tc.db, db, "{name}: db of {row:?}");
                        at = tc.end_offset;
                    }
                    let exec = rows.next().unwrap();
                    assert_eq!(upper(&exec.words[0]), b"EXEC", "{name}");
                    assert_eq!((exec.offset, exec.offset + exec.len), (at, *end), "{name}: {exec:?}");
                }
            }
            prev_end = end_of(u);
        }
        assert!(rows.peek().is_none(), "{name}: rows left over");
        assert_eq!(final_db, db, "{name}");

        // Every capture has SELECTs (inline in 2.4/2.6) and two transactions; all but
        // one end with the keepalive PING (inline in 2.4, lower case in 7.0).
        assert!(selects >= 4, "{name}: {selects} SELECTs");
        // Two in the workload; Redis 8 and Valkey 9 also send XREADGROUP as one.
        let multis = c.rows.iter().filter(|r| upper(&r.words[0]) == b"MULTI").count();
        assert!(multis >= 2, "{name}: {multis} MULTIs in the notes");
        assert_eq!(transactions, multis, "{name}");
        let noted_pings = c.rows.iter().filter(|r| upper(&r.words[0]) == b"PING").count();
        assert_eq!(pings, noted_pings, "{name}: every keepalive PING is a control unit");
        assert_eq!(pings == 0, name.contains("7.0.15/stream-slow-bgsave"), "{name}: {pings} PINGs");
        // Commands after a SELECT 3 go to db 3.
        assert!(units.iter().any(|u| matches!(u, Owned::Cmd { db: 3, args, .. } if args[1] == b"wl:db3")), "{name}");
        // The SET after SELECT 5 is in db 5: inside MULTI for 2.4 and 2.6, alone for 7.0
        // and later (which drop MULTI/EXEC around a single write).
        let db5_in_tx = units.iter().any(
            |u| matches!(u, Owned::Tx { commands, .. } if commands.iter().any(|c| c.db == 5 && c.args[1] == b"wl:db5")),
        );
        let db5_alone = units.iter().any(|u| matches!(u, Owned::Cmd { db: 5, args, .. } if args[1] == b"wl:db5"));
        let from_7 = !(name.contains("/2.4.16/") || name.contains("/2.6.16/"));
        assert!(db5_in_tx != db5_alone && db5_in_tx != from_7, "{name}");
    }
}

#[test]
fn byte_by_byte_gives_the_same_units() {
    for c in captures() {
        let bytes = stream_bytes(&c);
        let whole = units(c.range.0, &bytes, bytes.len());
        for piece in [1, 2, 7, 64] {
            assert_eq!(units(c.range.0, &bytes, piece), whole, "{}: {piece}-byte pieces", c.bin.display());
        }
    }
}

#[test]
fn offsets_line_up_with_the_master_offset() {
    // 7.0 and later report master_repl_offset = FULLRESYNC offset (0) + command
    // stream bytes.
    for c in captures().into_iter().filter(|c| !c.bin.to_string_lossy().contains("/2.")) {
        let bytes = stream_bytes(&c);
        let (_, offset, _) = units(0, &bytes, bytes.len());
        assert_eq!(offset, c.range.1 - c.range.0);
    }
}
