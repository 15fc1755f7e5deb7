use super::*;

/// A unit as owned data.
#[derive(Debug, Clone, PartialEq, Eq)]
enum U {
    Cmd(u32, u64, Vec<Vec<u8>>),
    Tx(u64, u64, Vec<TxCommand>),
    Ctl(u64, ControlKind),
}

fn own(u: &Unit<'_>) -> U {
    match u {
        Unit::Command(c) => {
            assert_eq!(c.len(), c.args().len());
            assert!(!c.is_empty());
            assert_eq!(c.name(), c.arg(0));
            assert_eq!(c.frame().end_offset(), c.end_offset);
            U::Cmd(c.db, c.end_offset, c.args().map(<[u8]>::to_vec).collect())
        }
        Unit::Transaction(t) => U::Tx(t.start_offset, t.end_offset, t.commands.to_vec()),
        Unit::Control(c) => U::Ctl(c.end_offset, c.kind),
    }
}

fn run_with(input: &[u8], piece: usize, limits: StreamLimits) -> (Vec<U>, Option<StreamError>, u64, u32) {
    let mut s = CommandStream::new(1000, 0, limits);
    let mut out = Vec::new();
    let step = if piece == 0 { input.len().max(1) } else { piece };
    for part in input.chunks(step) {
        s.feed(part);
        loop {
            match s.next_unit() {
                Ok(Some(u)) => {
                    let end = u.end_offset();
                    out.push(own(&u));
                    assert_eq!(s.offset(), end);
                    assert!(!s.in_transaction());
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(s.next_unit().err(), Some(e.clone()), "stays failed");
                    return (out, Some(e), s.offset(), s.db());
                }
            }
        }
    }
    (out, None, s.offset(), s.db())
}

/// Runs whole and byte by byte; both must agree.
fn run(input: &[u8]) -> (Vec<U>, Option<StreamError>, u64, u32) {
    run_limits(input, StreamLimits::default())
}

fn run_limits(input: &[u8], limits: StreamLimits) -> (Vec<U>, Option<StreamError>, u64, u32) {
    let whole = run_with(input, 0, limits.clone());
    for piece in [1, 2, 3, 5, 8] {
        assert_eq!(run_with(input, piece, limits.clone()), whole, "piece {piece}");
    }
    whole
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

fn words(args: &[&str]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// Concatenates pieces and returns the end offset (from 1000) after each.
fn stream(parts: &[Vec<u8>]) -> (Vec<u8>, Vec<u64>) {
    let mut input = Vec::new();
    let mut ends = Vec::new();
    for p in parts {
        input.extend_from_slice(p);
        ends.push(1000 + input.len() as u64);
    }
    (input, ends)
}

#[test]
fn commands_select_and_controls() {
    let (input, e) = stream(&[
        resp(&["SET", "a", "1"]),
        b"select 3\r\n".to_vec(),
        resp(&["del", "a"]),
        resp(&["SELECT", "12"]),
        resp(&["ping"]),
        b"PING\r\n".to_vec(),
        resp(&["REPLCONF", "GETACK", "*"]),
        resp(&["replconf", "something"]),
        b"\r\n".to_vec(),
        b"*0\r\n".to_vec(),
        resp(&["SET", "b", "2"]),
    ]);
    let (units, err, offset, db) = run(&input);
    assert_eq!(err, None);
    assert_eq!(
        units,
        vec![
            U::Cmd(0, e[0], words(&["SET", "a", "1"])),
            U::Ctl(e[1], ControlKind::Select(3)),
            U::Cmd(3, e[2], words(&["del", "a"])),
            U::Ctl(e[3], ControlKind::Select(12)),
            U::Ctl(e[4], ControlKind::Ping),
            U::Ctl(e[5], ControlKind::Ping),
            U::Ctl(e[6], ControlKind::GetAck),
            U::Ctl(e[7], ControlKind::Replconf),
            U::Ctl(e[8], ControlKind::Blank),
            U::Ctl(e[9], ControlKind::Blank),
            U::Cmd(12, e[10], words(&["SET", "b", "2"])),
        ]
    );
    assert_eq!((offset, db), (e[10], 12));
}

#[test]
fn initial_db() {
    let mut s = CommandStream::new(5, 7, StreamLimits::default());
    s.feed(b"GET k\n");
    match s.next_unit().unwrap() {
        Some(Unit::Command(c)) => assert_eq!((c.db, c.end_offset, c.name()), (7, 11, &b"GET"[..])),
        other => panic!("{other:?}"),
    }
}

#[test]
fn transaction() {
    let (input, e) = stream(&[
        resp(&["SELECT", "1"]),
        resp(&["multi"]),
        resp(&["SELECT", "4"]),
        resp(&["INCR", "c"]),
        resp(&["PING"]),
        resp(&["REPLCONF", "GETACK", "*"]),
        b"\n".to_vec(),
        b"select 5\r\n".to_vec(),
        resp(&["SET", "x", "y"]),
        resp(&["Exec"]),
        resp(&["GET", "x"]),
    ]);
    let (units, err, _, db) = run(&input);
    assert_eq!(err, None);
    assert_eq!(
        units,
        vec![
            U::Ctl(e[0], ControlKind::Select(1)),
            U::Tx(
                e[0],
                e[9],
                vec![
                    TxCommand { db: 4, end_offset: e[3], args: words(&["INCR", "c"]) },
                    TxCommand { db: 5, end_offset: e[8], args: words(&["SET", "x", "y"]) },
                ]
            ),
            U::Cmd(5, e[10], words(&["GET", "x"])),
        ]
    );
    assert_eq!(db, 5);
}

#[test]
fn offset_does_not_move_inside_multi() {
    let (input, e) = stream(&[resp(&["SET", "a", "1"]), resp(&["MULTI"]), resp(&["SET", "b", "2"]), resp(&["EXEC"])]);
    let mut s = CommandStream::new(1000, 0, StreamLimits::default());
    s.feed(&input[..(e[2] - 1000) as usize]);
    assert!(matches!(s.next_unit(), Ok(Some(Unit::Command(_)))));
    assert!(s.next_unit().unwrap().is_none());
    assert!(s.in_transaction());
    assert_eq!((s.offset(), s.buffered()), (e[0], 0));
    s.feed(&input[(e[2] - 1000) as usize..]);
    match s.next_unit().unwrap() {
        Some(Unit::Transaction(t)) => {
            assert_eq!((t.start_offset, t.end_offset, t.commands.len()), (e[0], e[3], 1));
        }
        other => panic!("{other:?}"),
    }
    assert!(!s.in_transaction());
    assert_eq!(s.offset(), e[3]);
}

#[test]
fn empty_transaction_and_discard() {
    let (input, e) = stream(&[
        resp(&["MULTI"]),
        resp(&["EXEC"]),
        resp(&["SELECT", "2"]),
        resp(&["MULTI"]),
        resp(&["SELECT", "9"]),
        resp(&["SET", "a", "1"]),
        resp(&["DISCARD"]),
        resp(&["SET", "b", "1"]),
    ]);
    let (units, err, _, db) = run(&input);
    assert_eq!(err, None);
    assert_eq!(
        units,
        vec![
            U::Tx(1000, e[1], vec![]),
            U::Ctl(e[2], ControlKind::Select(2)),
            U::Ctl(e[6], ControlKind::Discard),
            U::Cmd(2, e[7], words(&["SET", "b", "1"])),
        ]
    );
    assert_eq!(db, 2);
}

fn error_of(input: &[u8]) -> StreamError {
    let (_, err, _, _) = run(input);
    err.unwrap_or_else(|| panic!("no error for {:?}", String::from_utf8_lossy(input)))
}

#[test]
fn errors() {
    use StreamErrorKind::*;
    let pre = resp(&["SET", "a", "1"]);
    let at = 1000 + pre.len() as u64;
    let with = |tail: &[u8]| [pre.as_slice(), tail].concat();
    let bad_db = |arg: &str| BadDb { arg: arg.as_bytes().to_vec() };
    let cases: Vec<(Vec<u8>, u64, StreamErrorKind)> = vec![
        (with(&resp(&["SELECT", "x"])), at, bad_db("x")),
        (with(&resp(&["SELECT", "-1"])), at, bad_db("-1")),
        (with(&resp(&["SELECT", ""])), at, bad_db("")),
        (with(&resp(&["SELECT", "2147483648"])), at, bad_db("2147483648")),
        (with(&resp(&["SELECT", "99999999999999999999"])), at, bad_db("99999999999999999999")),
        (with(b"select 1 2\r\n"), at, SelectArity { args: 2 }),
        (with(b"select\r\n"), at, SelectArity { args: 0 }),
        (with(&[resp(&["MULTI"]), resp(&["SELECT", "y"])].concat()), at + 15, bad_db("y")),
        (with(&[resp(&["MULTI"]), resp(&["multi"])].concat()), at + 15, NestedMulti { multi_offset: at }),
        (with(&resp(&["EXEC"])), at, ExecWithoutMulti),
        (with(&resp(&["discard"])), at, DiscardWithoutMulti),
        (with(b"*1\r\n$4\r\nPING\r\r"), at + 13, Read(ReadErrorKind::MissingCrlf { found: b'\r' })),
    ];
    for (input, offset, kind) in cases {
        let e = error_of(&input);
        assert_eq!((e.offset, &e.kind), (offset, &kind), "{:?}", String::from_utf8_lossy(&input));
    }
    // The largest db is fine.
    assert_eq!(run(&resp(&["SELECT", "2147483647"])).3, 2147483647);
}

#[test]
fn transaction_limit_names_the_multi() {
    let limits = StreamLimits { max_transaction_bytes: 60, ..StreamLimits::default() };
    let set = resp(&["SET", "a", "1"]); // 29 bytes
    let ok = [resp(&["MULTI"]), set.clone(), set.clone(), resp(&["EXEC"])].concat();
    let (units, err, _, _) = run_limits(&ok, limits.clone());
    assert_eq!((units.len(), err), (1, None));
    let over = [resp(&["PING"]), resp(&["MULTI"]), set.clone(), resp(&["PING"]), set.clone(), set, resp(&["EXEC"])].concat();
    let (units, err, offset, _) = run_limits(&over, limits);
    assert_eq!(units, vec![U::Ctl(1014, ControlKind::Ping)]);
    let err = err.unwrap();
    assert_eq!(err.offset, 1014);
    assert_eq!(err.kind, StreamErrorKind::TransactionTooLarge { limit: 60 });
    assert_eq!(offset, 1014);
    assert_eq!(
        err.to_string(),
        "replication stream: transaction too large at offset 1014: the commands of the transaction started here take more than 60 bytes"
    );
}

#[test]
fn error_display() {
    let e = error_of(b"select x\r\n");
    assert_eq!(e.to_string(), "replication stream: bad SELECT at offset 1000: SELECT \"x\": not a db number");
    let e = error_of(b"*1\r\n$-1\r\n");
    assert_eq!(
        e.to_string(),
        "replication stream: negative bulk length at offset 1005: a command argument cannot be a null or negative-length bulk string"
    );
}
