use super::*;
use proptest::prelude::*;

/// One frame as owned data: args, inline, start offset, end offset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    args: Vec<Vec<u8>>,
    inline: bool,
    start: u64,
    end: u64,
}

/// Reads `input` fed in `piece`-byte pieces (0 = whole), draining after every feed.
fn read_with(input: &[u8], piece: usize, start: u64, limits: ReaderLimits) -> (Vec<Got>, Option<ReadError>) {
    let mut r = CommandReader::new(limits, start);
    let mut out = Vec::new();
    let step = if piece == 0 { input.len().max(1) } else { piece };
    for part in input.chunks(step) {
        r.feed(part);
        loop {
            match r.next_command() {
                Ok(Some(f)) => {
                    assert_eq!(f.len(), f.args().len());
                    assert_eq!(f.is_empty(), f.args().len() == 0);
                    assert_eq!(f.name(), f.arg(0));
                    assert_eq!(f.end_offset() - f.start_offset(), f.wire_len() as u64);
                    let g = Got {
                        args: f.args().map(<[u8]>::to_vec).collect(),
                        inline: f.is_inline(),
                        start: f.start_offset(),
                        end: f.end_offset(),
                    };
                    assert_eq!(r.offset(), g.end);
                    out.push(g);
                }
                Ok(None) => break,
                Err(e) => {
                    // Stays failed.
                    assert_eq!(r.next_command().err(), Some(e.clone()));
                    return (out, Some(e));
                }
            }
        }
    }
    let consumed = out.last().map_or(start, |g| g.end);
    assert_eq!(consumed - start + r.buffered() as u64, input.len() as u64);
    (out, None)
}

/// Reads `input` whole, 1 byte at a time and in every 2..=7 split, checks all agree,
/// and returns the result.
fn read(input: &[u8]) -> (Vec<Got>, Option<ReadError>) {
    read_limits(input, ReaderLimits::default())
}

fn read_limits(input: &[u8], limits: ReaderLimits) -> (Vec<Got>, Option<ReadError>) {
    let whole = read_with(input, 0, 100, limits.clone());
    for piece in 1..=7 {
        assert_eq!(read_with(input, piece, 100, limits.clone()), whole, "piece size {piece}");
    }
    // Every two-piece split.
    for cut in 0..=input.len() {
        let mut r = CommandReader::new(limits.clone(), 100);
        let mut got = Vec::new();
        let mut err = None;
        for part in [&input[..cut], &input[cut..]] {
            r.feed(part);
            loop {
                match r.next_command() {
                    Ok(Some(f)) => got.push(Got {
                        args: f.args().map(<[u8]>::to_vec).collect(),
                        inline: f.is_inline(),
                        start: f.start_offset(),
                        end: f.end_offset(),
                    }),
                    Ok(None) => break,
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            if err.is_some() {
                break;
            }
        }
        assert_eq!((got, err), whole, "split at {cut}");
    }
    whole
}

fn args(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

fn ok(input: &[u8]) -> Vec<Got> {
    let (got, err) = read(input);
    assert_eq!(err, None);
    got
}

fn fails(input: &[u8]) -> (Vec<Got>, ReadError) {
    let (got, err) = read(input);
    (got, err.unwrap_or_else(|| panic!("no error for {:?}", String::from_utf8_lossy(input))))
}

#[test]
fn multibulk() {
    let got = ok(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*1\r\n$4\r\nPING\r\n");
    assert_eq!(
        got,
        vec![
            Got { args: vec![b"SET".to_vec(), b"k".to_vec(), vec![]], inline: false, start: 100, end: 126 },
            Got { args: args(&["PING"]), inline: false, start: 126, end: 140 },
        ]
    );
}

#[test]
fn binary_args_and_crlf_inside() {
    let got = ok(b"*2\r\n$4\r\n\r\n\0*\r\n$3\r\n$1\n\r\n");
    assert_eq!(got[0].args, vec![b"\r\n\0*".to_vec(), b"$1\n".to_vec()]);
    assert_eq!(got[0].end - got[0].start, 23);
}

#[test]
fn empty_multibulk() {
    let got = ok(b"*0\r\n*-1\r\n*1\r\n$1\r\nx\r\n");
    assert_eq!(got.len(), 3);
    assert!(got[0].args.is_empty() && got[1].args.is_empty());
    assert_eq!((got[0].start, got[0].end), (100, 104));
    assert_eq!((got[1].start, got[1].end), (104, 109));
    assert_eq!(got[2].args, args(&["x"]));
}

#[test]
fn inline() {
    let got = ok(b"select 3\r\nPING\r\n\r\n\n  \t a\tb  c \r\nno-cr\nx\ry\n");
    let want: Vec<(Vec<Vec<u8>>, u64, u64)> = vec![
        (args(&["select", "3"]), 100, 110),
        (args(&["PING"]), 110, 116),
        (vec![], 116, 118),
        (vec![], 118, 119),
        (args(&["a", "b", "c"]), 119, 132),
        (args(&["no-cr"]), 132, 138),
        (vec![b"x\ry".to_vec()], 138, 142),
    ];
    assert_eq!(got.iter().map(|g| (g.args.clone(), g.start, g.end)).collect::<Vec<_>>(), want);
    assert!(got.iter().all(|g| g.inline));
}

#[test]
fn inline_then_multibulk_then_incomplete() {
    let (got, err) = read(b"PING\r\n*1\r\n$4\r\nPING\r\nsel");
    assert_eq!(err, None);
    assert_eq!(got.len(), 2);
    assert!(got[0].inline && !got[1].inline);
    let mut r = CommandReader::new(ReaderLimits::default(), 0);
    r.feed(b"PING\r\n*1\r\n$4\r\nPI");
    assert!(r.next_command().unwrap().is_some());
    assert_eq!(r.next_command().unwrap().map(|f| f.len()), None);
    assert_eq!((r.offset(), r.buffered()), (6, 10));
}

fn err_at(input: &[u8]) -> (u64, ReadErrorKind) {
    let (_, e) = fails(input);
    (e.offset - 100, e.kind)
}

#[test]
fn errors_with_offsets() {
    use ReadErrorKind::*;
    let cases: &[(&[u8], u64, ReadErrorKind)] = &[
        (b"*x\r\n", 1, BadArrayLength { found: b'x' }),
        (b"*\r\n", 1, BadArrayLength { found: b'\r' }),
        (b"*1\rx", 3, BadArrayLength { found: b'x' }),
        (b"*1\n", 2, BadArrayLength { found: b'\n' }),
        (b"*-2\r\n", 2, BadArrayLength { found: b'2' }),
        (b"*-10\r\n", 3, BadArrayLength { found: b'0' }),
        (b"*--1\r\n", 2, BadArrayLength { found: b'-' }),
        (b"*01\r\n", 2, BadArrayLength { found: b'1' }),
        (b"*1 \r\n", 2, BadArrayLength { found: b' ' }),
        (b"*1\r\n+OK\r\n", 4, BadBulkHeader { found: b'+' }),
        (b"*2\r\n$1\r\na\r\n:1\r\n", 11, BadBulkHeader { found: b':' }),
        (b"*1\r\n$a\r\n", 5, BadBulkLength { found: b'a' }),
        (b"*1\r\n$\r\n", 5, BadBulkLength { found: b'\r' }),
        (b"*1\r\n$00\r\n", 6, BadBulkLength { found: b'0' }),
        (b"*1\r\n$1\r\r", 7, BadBulkLength { found: b'\r' }),
        (b"*1\r\n$-1\r\n", 5, NegativeBulkLength),
        (b"*1\r\n$1\r\nab\r\n", 9, MissingCrlf { found: b'b' }),
        (b"*1\r\n$1\r\na\rb", 10, MissingCrlf { found: b'b' }),
        (b"*1\r\n$1\r\na\n\r", 9, MissingCrlf { found: b'\n' }),
        (b"PING\r\n*1\r\n$1\r\nab", 15, MissingCrlf { found: b'b' }),
    ];
    for (input, offset, kind) in cases {
        assert_eq!(err_at(input), (*offset, kind.clone()), "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn frames_before_an_error_are_returned() {
    let (got, e) = fails(b"*1\r\n$1\r\na\r\nPING\r\n*1\r\n$x");
    assert_eq!(got.len(), 2);
    assert_eq!(e.offset, 100 + 11 + 6 + 5);
}

#[test]
fn error_display() {
    let (_, e) = fails(b"*1\r\n$x\r\n");
    assert_eq!(
        e.to_string(),
        "replication stream: bad bulk length at offset 105: expected digits then CRLF after '$', found 'x'"
    );
}

#[test]
fn limits() {
    use ReadErrorKind::*;
    let small = ReaderLimits { max_inline: 8, max_args: 3, max_bulk: 10 };
    let r = |input: &[u8]| read_limits(input, small.clone());
    // At the limits: fine.
    assert_eq!(r(b"12345678\n").1, None);
    assert_eq!(r(b"1234567\r\n").1, None);
    assert_eq!(r(b"a b c\n").1, None);
    assert_eq!(r(b"*3\r\n$10\r\n0123456789\r\n$0\r\n\r\n$0\r\n\r\n").1, None);
    // Over: errors at the start of the header or line.
    let e = |input: &[u8]| r(input).1.map(|e| (e.offset - 100, e.kind));
    assert_eq!(e(b"123456789\n"), Some((0, InlineTooLong { limit: 8 })));
    assert_eq!(e(b"PING\n123456789"), Some((5, InlineTooLong { limit: 8 })));
    assert_eq!(e(b"12345678\r\n"), Some((0, InlineTooLong { limit: 8 })));
    assert_eq!(e(b"a b c d\n"), Some((0, TooManyArgs { limit: 3 })));
    assert_eq!(e(b"*4\r\n"), Some((0, TooManyArgs { limit: 3 })));
    assert_eq!(e(b"PING\n*1000000000000000000000000\r\n"), Some((5, TooManyArgs { limit: 3 })));
    assert_eq!(e(b"*1\r\n$11\r\n"), Some((4, BulkTooLarge { limit: 10 })));
    assert_eq!(e(b"*1\r\n$99999999999999999999999\r\n"), Some((4, BulkTooLarge { limit: 10 })));
    // A huge declared length allocates nothing up front.
    let mut reader = CommandReader::new(ReaderLimits::default(), 0);
    reader.feed(b"*1048576\r\n$536870912\r\n");
    assert_eq!(reader.next_command().unwrap().map(|f| f.len()), None);
    assert!(reader.buf.capacity() < 1024 && reader.spans.capacity() < 1024);
}

#[test]
fn large_frame_in_many_pieces_is_parsed_once() {
    // 100k arguments fed 3 bytes at a time: linear, so this finishes quickly.
    let n = 100_000;
    let mut input = format!("*{n}\r\n").into_bytes();
    for _ in 0..n {
        input.extend_from_slice(b"$1\r\nx\r\n");
    }
    let mut r = CommandReader::new(ReaderLimits::default(), 0);
    let mut frames = 0;
    for part in input.chunks(3) {
        r.feed(part);
        while let Some(f) = r.next_command().unwrap() {
            assert_eq!(f.len(), n);
            frames += 1;
        }
    }
    assert_eq!(frames, 1);
    assert_eq!(r.offset(), input.len() as u64);
}

#[test]
fn buffer_is_compacted() {
    let mut r = CommandReader::new(ReaderLimits::default(), 0);
    let cmd = b"*1\r\n$4\r\nPING\r\n";
    for _ in 0..10_000 {
        r.feed(cmd);
        r.feed(&cmd[..5]);
        assert!(r.next_command().unwrap().is_some());
        r.feed(&cmd[5..]);
        assert!(r.next_command().unwrap().is_some());
        assert!(r.next_command().unwrap().is_none());
    }
    assert_eq!(r.offset(), 2 * 10_000 * cmd.len() as u64);
    assert!(r.buf.capacity() < 256, "capacity {}", r.buf.capacity());
}

#[test]
fn arg_out_of_range_is_empty() {
    let mut r = CommandReader::new(ReaderLimits::default(), 0);
    r.feed(b"GET k\n");
    let f = r.next_command().unwrap().unwrap();
    assert_eq!((f.arg(0), f.arg(1), f.arg(2)), (&b"GET"[..], &b"k"[..], &b""[..]));
}

/// A command and how to encode it.
#[derive(Debug, Clone)]
enum Cmd {
    Resp(Vec<Vec<u8>>),
    /// Args free of spaces, tabs, CR and LF, the first not starting with `*`; `crlf`
    /// picks `\r\n` or `\n`.
    Inline(Vec<Vec<u8>>, bool),
    Empty(bool),
}

impl Cmd {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Cmd::Resp(a) => {
                out.extend_from_slice(format!("*{}\r\n", a.len()).as_bytes());
                for x in a {
                    out.extend_from_slice(format!("${}\r\n", x.len()).as_bytes());
                    out.extend_from_slice(x);
                    out.extend_from_slice(b"\r\n");
                }
            }
            Cmd::Inline(a, crlf) => {
                let words: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
                out.extend_from_slice(&words.join(&b' '));
                out.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
            Cmd::Empty(minus) => out.extend_from_slice(if *minus { b"*-1\r\n" } else { b"*0\r\n" }),
        }
    }

    fn args(&self) -> Vec<Vec<u8>> {
        match self {
            Cmd::Resp(a) | Cmd::Inline(a, _) => a.clone(),
            Cmd::Empty(_) => vec![],
        }
    }
}

fn cmd_strategy() -> impl Strategy<Value = Cmd> {
    let word = proptest::collection::vec(any::<u8>().prop_filter("inline-safe", |b| !b" \t\r\n".contains(b)), 1..8);
    let inline = (proptest::collection::vec(word, 0..5), any::<bool>())
        .prop_filter("first word not '*'", |(a, _)| a.first().is_none_or(|w| w[0] != b'*'))
        .prop_map(|(a, crlf)| Cmd::Inline(a, crlf));
    prop_oneof![
        4 => proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..6).prop_map(Cmd::Resp),
        2 => inline,
        1 => any::<bool>().prop_map(Cmd::Empty),
    ]
}

proptest! {
    #[test]
    fn random_commands_in_random_pieces(
        cmds in proptest::collection::vec(cmd_strategy(), 0..20),
        pieces in proptest::collection::vec(1usize..40, 1..50),
        start in 0u64..1_000_000,
    ) {
        let mut input = Vec::new();
        let mut want = Vec::new();
        for c in &cmds {
            let s = start + input.len() as u64;
            c.encode(&mut input);
            want.push((c.args(), s, start + input.len() as u64));
        }
        let mut r = CommandReader::new(ReaderLimits::default(), start);
        let mut got = Vec::new();
        let mut rest = &input[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = pieces[i % pieces.len()].min(rest.len());
            i += 1;
            r.feed(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = r.next_command().unwrap() {
                got.push((f.args().map(<[u8]>::to_vec).collect::<Vec<_>>(), f.start_offset(), f.end_offset()));
            }
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(r.buffered(), 0);
        prop_assert_eq!(r.offset(), start + input.len() as u64);
    }

    #[test]
    fn garbage_never_panics_and_splits_agree(
        input in proptest::collection::vec(prop_oneof![
            any::<u8>(),
            Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'1'), Just(b'-'), Just(b'0'),
        ], 0..200),
        piece in 1usize..10,
    ) {
        let limits = ReaderLimits { max_inline: 50, max_args: 10, max_bulk: 64 };
        let whole = read_with(&input, 0, 7, limits.clone());
        prop_assert_eq!(read_with(&input, piece, 7, limits.clone()), whole.clone());
        prop_assert_eq!(read_with(&input, 1, 7, limits), whole);
    }
}
