//! `RESTORE` payloads re-encoded for a destination older than the source.
//!
//! A destination refuses a payload stamped with a newer RDB version than its own (2.6 to
//! 3.0 take exactly 6, 3.2 up to 7, 5.0 and 6.2 up to 9, ...), and a newer source
//! stores its collections in layouts an older server cannot read (listpacks, quicklist
//! v2). The plain object types are read by every server that has `RESTORE`: type 1
//! list, 2 set, 3 sorted set (scores as text) and 4 hash, each a length and then its
//! strings. [`PayloadBuilder`] writes one key's value in those types from the decoder's
//! pieces, and [`PayloadBuilder::finish`] stamps it with the destination's version and
//! its CRC-64.
//!
//! The element count comes before the elements, so the encoded elements are kept in a
//! buffer, bounded by a byte limit, with room left in front of them for the type byte
//! and the count: each element is copied once, and nothing is moved when the payload is
//! finished. A key whose value outgrows the limit, or that cannot be written in these
//! types (hash fields with TTLs), is refused and goes as commands instead.

use crate::crc64::Crc64;
use crate::rdb::{Chunk, Elem, Kind};

/// Why a value cannot be re-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its encoded elements are longer than the builder's limit.
    TooBig,
    /// A hash field carries a TTL, which the plain hash type cannot hold.
    FieldTtl,
    /// Not a list, set, sorted set or hash piece (or pieces of different types).
    NotPlain,
    /// No elements: every server version either refuses an empty collection or loads an
    /// empty key that should not exist.
    Empty,
    /// A length of 2^32 or more, which only RDB 8+ (Redis 4.0+) reads.
    TooLongForVersion,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::TooBig => "the value is over the size limit",
            Refusal::FieldTtl => "hash fields carry TTLs",
            Refusal::NotPlain => "not a list, set, sorted set or hash",
            Refusal::Empty => "the value has no elements",
            Refusal::TooLongForVersion => "a length of 2^32 or more needs RDB 8 or later",
        })
    }
}

/// Room in front of the elements: the type byte and the longest length (9 bytes).
const HEAD: usize = 10;

/// Builds one key's value as a `RESTORE` payload in the plain types; see the module
/// docs. Reused from key to key (the buffer is kept).
#[derive(Debug)]
pub struct PayloadBuilder {
    /// `HEAD` bytes of room, then the encoded elements.
    buf: Vec<u8>,
    kind: Option<Kind>,
    count: u64,
    limit: usize,
    /// A length needs the 64-bit form.
    wide: bool,
    refused: Option<Refusal>,
}

/// A finished payload: the value (type byte, count, elements) and its footer (version
/// and CRC-64), to be sent one after the other.
#[derive(Debug, Clone, Copy)]
pub struct Payload<'a> {
    /// Type byte and serialized value.
    pub value: &'a [u8],
    /// RDB version (u16 LE) and CRC-64 (u64 LE) of everything before it.
    pub footer: [u8; 10],
}

impl Payload<'_> {
    /// The payload as pieces, in order.
    pub fn parts(&self) -> [&[u8]; 2] {
        [self.value, &self.footer]
    }

    /// The payload in one buffer (a copy; for tests and tools).
    pub fn to_vec(&self) -> Vec<u8> {
        [self.value, &self.footer].concat()
    }
}

/// The footer of a `DUMP`/`RESTORE` payload whose value (type byte and serialized
/// value) is `value`: the RDB version, then the CRC-64 of the value and the version.
pub fn footer(value: &[u8], version: u16) -> [u8; 10] {
    let version = version.to_le_bytes();
    let mut crc = Crc64::new();
    crc.update(value);
    crc.update(&version);
    let mut out = [0u8; 10];
    out[..2].copy_from_slice(&version);
    out[2..].copy_from_slice(&crc.value().to_le_bytes());
    out
}

impl PayloadBuilder {
    /// A builder that refuses values whose encoded elements pass `limit` bytes.
    pub fn new(limit: usize) -> PayloadBuilder {
        PayloadBuilder { buf: vec![0; HEAD], kind: None, count: 0, limit, wide: false, refused: None }
    }

    /// Starts a new key.
    pub fn reset(&mut self) {
        self.buf.truncate(HEAD);
        self.kind = None;
        self.count = 0;
        self.wide = false;
        self.refused = None;
    }

    /// Bytes of encoded elements so far.
    pub fn len(&self) -> usize {
        self.buf.len() - HEAD
    }

    /// Whether no element has been added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds one piece of the key's value. Once it refuses, it refuses every later piece
    /// too (the key then goes as commands).
    pub fn push(&mut self, chunk: &Chunk) -> Result<(), Refusal> {
        if let Some(r) = self.refused {
            return Err(r);
        }
        let r = self.push_inner(chunk);
        if let Err(e) = r {
            self.refused = Some(e);
            // What was encoded is of no use any more.
            self.buf.truncate(HEAD);
        }
        r
    }

    fn push_inner(&mut self, chunk: &Chunk) -> Result<(), Refusal> {
        let kind = match chunk {
            Chunk::List(_) => Kind::List,
            Chunk::Set(_) => Kind::Set,
            Chunk::Zset(_) => Kind::Zset,
            Chunk::Hash(_) => Kind::Hash,
            _ => return Err(Refusal::NotPlain),
        };
        if *self.kind.get_or_insert(kind) != kind {
            return Err(Refusal::NotPlain);
        }
        // Each element is measured before it is copied, so the buffer never holds more
        // than the limit (a huge element is refused, not copied first).
        match chunk {
            Chunk::List(e) | Chunk::Set(e) => {
                for x in e.iter() {
                    self.room(elem_len(x))?;
                    self.put_elem(x);
                }
            }
            Chunk::Zset(z) => {
                let mut b = ryu::Buffer::new();
                for (m, s) in z.iter() {
                    let score = score_text(&mut b, s);
                    self.room(elem_len(m) + 1 + score.len())?;
                    self.put_elem(m);
                    put_score(&mut self.buf, s, score);
                }
            }
            Chunk::Hash(h) => {
                for f in h.iter() {
                    if f.expire_at_ms.is_some() {
                        return Err(Refusal::FieldTtl);
                    }
                    self.room(elem_len(f.field) + elem_len(f.value))?;
                    self.put_elem(f.field);
                    self.put_elem(f.value);
                }
            }
            _ => return Err(Refusal::NotPlain),
        }
        self.count += chunk.len() as u64;
        self.wide |= self.count > u64::from(u32::MAX);
        Ok(())
    }

    /// Whether `n` more bytes stay within the limit.
    fn room(&self, n: usize) -> Result<(), Refusal> {
        if n > self.limit.saturating_sub(self.len()) {
            return Err(Refusal::TooBig);
        }
        Ok(())
    }

    fn put_elem(&mut self, e: Elem) {
        match e {
            Elem::Int(i) => put_int(&mut self.buf, i),
            Elem::Bytes(b) => {
                self.wide |= b.len() as u64 > u64::from(u32::MAX);
                let (len, n) = encode_len(b.len() as u64);
                self.buf.extend_from_slice(&len[..n]);
                self.buf.extend_from_slice(b);
            }
        }
    }

    /// The payload, stamped with RDB version `version` (the destination's). The type
    /// byte and the count are written into the room in front of the elements.
    pub fn finish(&mut self, version: u16) -> Result<Payload<'_>, Refusal> {
        if let Some(r) = self.refused {
            return Err(r);
        }
        let type_byte = match self.kind {
            _ if self.count == 0 => return Err(Refusal::Empty),
            Some(Kind::List) => 1,
            Some(Kind::Set) => 2,
            Some(Kind::Zset) => 3,
            Some(Kind::Hash) => 4,
            _ => return Err(Refusal::NotPlain),
        };
        if self.wide && version < 8 {
            return Err(Refusal::TooLongForVersion);
        }
        let (len, n) = encode_len(self.count);
        let start = HEAD - n - 1;
        self.buf[start] = type_byte;
        self.buf[start + 1..HEAD].copy_from_slice(&len[..n]);
        let value = &self.buf[start..];
        Ok(Payload { value, footer: footer(value, version) })
    }
}

/// The encoded size of one element.
fn elem_len(e: Elem) -> usize {
    match e {
        Elem::Int(i) if i8::try_from(i).is_ok() => 2,
        Elem::Int(i) if i16::try_from(i).is_ok() => 3,
        Elem::Int(i) if i32::try_from(i).is_ok() => 5,
        Elem::Int(_) => 1 + e.len(),
        Elem::Bytes(b) => encode_len(b.len() as u64).1 + b.len(),
    }
}

/// The RDB length encoding of `n` (big-endian 14/32/64-bit forms), and its size.
fn encode_len(n: u64) -> ([u8; 9], usize) {
    let mut out = [0u8; 9];
    if n < 1 << 6 {
        out[0] = n as u8;
        (out, 1)
    } else if n < 1 << 14 {
        out[0] = 0x40 | (n >> 8) as u8;
        out[1] = n as u8;
        (out, 2)
    } else if n <= u64::from(u32::MAX) {
        out[0] = 0x80;
        out[1..5].copy_from_slice(&(n as u32).to_be_bytes());
        (out, 5)
    } else {
        out[0] = 0x81;
        out[1..9].copy_from_slice(&n.to_be_bytes());
        (out, 9)
    }
}

/// An integer element: the 8/16/32-bit integer encodings every version reads, else its
/// decimal text.
fn put_int(out: &mut Vec<u8>, i: i64) {
    if let Ok(b) = i8::try_from(i) {
        out.extend_from_slice(&[0xc0, b as u8]);
    } else if let Ok(h) = i16::try_from(i) {
        out.push(0xc1);
        out.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(i) {
        out.push(0xc2);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        let mut b = itoa::Buffer::new();
        let text = b.format(i).as_bytes();
        out.push(text.len() as u8);
        out.extend_from_slice(text);
    }
}

/// The text of a finite score: the shortest that reads back as the same double
/// (`strtod`, `sscanf("%lg")`); empty for nan and the infinities, which have codes.
fn score_text(b: &mut ryu::Buffer, s: f64) -> &[u8] {
    if !s.is_finite() {
        return b"";
    }
    let text = b.format_finite(s);
    // `3.0` reads back as well as `3`; Redis writes integral scores without it.
    text.strip_suffix(".0").unwrap_or(text).as_bytes()
}

/// A score in the text form of type 3: a length byte and its text (at most 24 bytes,
/// where the length byte allows 252), or 253/254/255 for nan/+inf/-inf.
fn put_score(out: &mut Vec<u8>, s: f64, text: &[u8]) {
    if s.is_nan() {
        out.push(253);
    } else if s == f64::INFINITY {
        out.push(254);
    } else if s == f64::NEG_INFINITY {
        out.push(255);
    } else {
        out.push(text.len() as u8);
        out.extend_from_slice(text);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::rdb::{
        Arenas, Decoder, DecoderOptions, ElemRef, Elems, Encoding, FieldRef, Fields, Record, Scored, Src,
    };

    /// An element as a test writes it.
    #[derive(Debug, Clone, PartialEq)]
    enum E {
        I(i64),
        B(Vec<u8>),
    }

    impl E {
        fn text(&self) -> Vec<u8> {
            match self {
                E::I(i) => i.to_string().into_bytes(),
                E::B(b) => b.clone(),
            }
        }
    }

    fn b(s: &[u8]) -> E {
        E::B(s.to_vec())
    }

    /// A value as a test writes it.
    #[derive(Debug, Clone, PartialEq)]
    enum V {
        List(Vec<E>),
        Set(Vec<E>),
        Zset(Vec<(E, f64)>),
        Hash(Vec<(E, E, Option<i64>)>),
    }

    /// Calls `f` with `v` as one decoder piece (elements in one arena, integers as
    /// integers).
    fn with_chunk<R>(v: &V, f: impl FnOnce(&Chunk) -> R) -> R {
        let mut arena = Vec::new();
        let mut at = |e: &E| match e {
            E::I(i) => ElemRef::Int(*i),
            E::B(b) => {
                arena.extend_from_slice(b);
                ElemRef::Span { src: Src::Scratch, start: arena.len() - b.len(), len: b.len() }
            }
        };
        let (mut elems, mut scored, mut fields) = (Vec::new(), Vec::new(), Vec::new());
        match v {
            V::List(x) | V::Set(x) => elems = x.iter().map(&mut at).collect(),
            V::Zset(x) => scored = x.iter().map(|(m, s)| (at(m), *s)).collect(),
            V::Hash(x) => {
                fields = x.iter().map(|(k, v, t)| FieldRef { field: at(k), value: at(v), expire_at_ms: *t }).collect()
            }
        }
        let a = Arenas { input: b"", scratch: &arena, blob: b"" };
        let chunk = match v {
            V::List(_) => Chunk::List(Elems::new(a, &elems)),
            V::Set(_) => Chunk::Set(Elems::new(a, &elems)),
            V::Zset(_) => Chunk::Zset(Scored::new(a, &scored)),
            V::Hash(_) => Chunk::Hash(Fields::new(a, &fields)),
        };
        f(&chunk)
    }

    /// `v` in pieces of `piece` elements.
    fn pieces(v: &V, piece: usize) -> Vec<V> {
        let piece = piece.max(1);
        match v {
            V::List(x) => x.chunks(piece).map(|c| V::List(c.to_vec())).collect(),
            V::Set(x) => x.chunks(piece).map(|c| V::Set(c.to_vec())).collect(),
            V::Zset(x) => x.chunks(piece).map(|c| V::Zset(c.to_vec())).collect(),
            V::Hash(x) => x.chunks(piece).map(|c| V::Hash(c.to_vec())).collect(),
        }
    }

    fn push(builder: &mut PayloadBuilder, v: &V, piece: usize) -> Result<(), Refusal> {
        pieces(v, piece).iter().try_for_each(|p| with_chunk(p, |c| builder.push(c)))
    }

    /// The payload for `v` stamped with `version`.
    fn build(v: &V, version: u16) -> Vec<u8> {
        let mut builder = PayloadBuilder::new(usize::MAX);
        push(&mut builder, v, 3).unwrap();
        builder.finish(version).unwrap().to_vec()
    }

    /// What the project's decoder reads from `payload` (checked as RESTORE checks it)
    /// put into a minimal RDB of that version: the encoding and the value, as strings.
    fn decode(payload: &[u8]) -> (Encoding, V) {
        let (value, foot) = payload.split_at(payload.len() - 10);
        let version = u16::from_le_bytes([foot[0], foot[1]]);
        assert_eq!(foot, footer(value, version), "footer");
        assert_eq!(
            u64::from_le_bytes(foot[2..].try_into().unwrap()),
            crate::crc64::checksum(&payload[..payload.len() - 8])
        );
        let mut rdb = format!("REDIS{version:04}").into_bytes();
        rdb.extend_from_slice(&[0xfe, 0, value[0], 1, b'k']);
        rdb.extend_from_slice(&value[1..]);
        rdb.push(0xff);
        let crc = crate::crc64::checksum(&rdb);
        rdb.extend_from_slice(&crc.to_le_bytes());
        let mut d = Decoder::with_options(DecoderOptions { chunk_elements: 5, ..DecoderOptions::default() });
        d.feed(&rdb);
        d.finish();
        let (mut enc, mut v) = (None, None);
        let t = |e: Elem| E::B(e.to_vec());
        while let Some(r) = d.next_record().unwrap() {
            match r {
                Record::Key(k) => {
                    assert_eq!(k.key, b"k");
                    enc = Some(k.encoding);
                    v = Some(match k.encoding.kind() {
                        Kind::List => V::List(vec![]),
                        Kind::Set => V::Set(vec![]),
                        Kind::Zset => V::Zset(vec![]),
                        Kind::Hash => V::Hash(vec![]),
                        other => panic!("{other:?}"),
                    });
                }
                Record::Value(c) => match (v.as_mut().unwrap(), c) {
                    (V::List(x), Chunk::List(e)) | (V::Set(x), Chunk::Set(e)) => x.extend(e.iter().map(t)),
                    (V::Zset(x), Chunk::Zset(z)) => x.extend(z.iter().map(|(m, s)| (t(m), s))),
                    (V::Hash(x), Chunk::Hash(h)) => {
                        x.extend(h.iter().map(|f| (t(f.field), t(f.value), f.expire_at_ms)))
                    }
                    (v, c) => panic!("{c:?} in {v:?}"),
                },
                Record::End(_) => assert!(d.is_done()),
                _ => {}
            }
        }
        (enc.expect("a key"), v.expect("a value"))
    }

    /// `v` with every element as its string (what the decoder gives back).
    fn as_text(v: &V) -> V {
        let t = |e: &E| E::B(e.text());
        match v {
            V::List(x) => V::List(x.iter().map(t).collect()),
            V::Set(x) => V::Set(x.iter().map(t).collect()),
            V::Zset(x) => V::Zset(x.iter().map(|(m, s)| (t(m), *s)).collect()),
            V::Hash(x) => V::Hash(x.iter().map(|(k, v, e)| (t(k), t(v), *e)).collect()),
        }
    }

    /// Decoded and written values are the same (scores bit for bit; any NaN is NaN).
    fn assert_round_trip(v: &V, version: u16) {
        let (enc, got) = decode(&build(v, version));
        let want_enc = match v {
            V::List(_) => Encoding::List,
            V::Set(_) => Encoding::Set,
            V::Zset(_) => Encoding::Zset,
            V::Hash(_) => Encoding::Hash,
        };
        assert_eq!(enc, want_enc);
        match (as_text(v), got) {
            (V::Zset(want), V::Zset(got)) => {
                assert_eq!(want.len(), got.len());
                for ((wm, ws), (gm, gs)) in want.iter().zip(&got) {
                    assert_eq!(wm, gm);
                    assert!(ws.to_bits() == gs.to_bits() || (ws.is_nan() && gs.is_nan()), "{ws} read back as {gs}");
                }
            }
            (want, got) => assert_eq!(want, got),
        }
    }

    fn ints() -> Vec<E> {
        [0, 1, -1, 127, -128, 128, -129, 32767, -32768, 32768, -32769, i32::MAX as i64, i32::MIN as i64]
            .into_iter()
            .chain([i32::MAX as i64 + 1, i32::MIN as i64 - 1, i64::MAX, i64::MIN])
            .map(E::I)
            .collect()
    }

    #[test]
    fn a_small_list_byte_for_byte() {
        let p = build(&V::List(vec![b(b"a"), E::I(1), b(b""), E::I(-300), E::I(1 << 40)]), 6);
        let mut want = vec![1, 5, 1, b'a', 0xc0, 1, 0, 0xc1];
        want.extend_from_slice(&(-300i16).to_le_bytes());
        want.extend_from_slice(&[13]);
        want.extend_from_slice(b"1099511627776");
        want.extend_from_slice(&[6, 0]);
        let crc = crate::crc64::checksum(&want);
        want.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(p, want);
    }

    #[test]
    fn every_type_round_trips() {
        let binary: Vec<u8> = (0..=255).collect();
        let mut elems = vec![b(b""), b(b"plain"), E::B(binary.clone()), b(b"\r\n\x00"), b(b"12"), b(b"-0"), b(b"007")];
        elems.extend(ints());
        for version in [6, 7, 9] {
            assert_round_trip(&V::List(elems.clone()), version);
            assert_round_trip(&V::Set(elems.clone()), version);
            let scored: Vec<(E, f64)> = elems.iter().enumerate().map(|(i, e)| (e.clone(), i as f64 - 3.5)).collect();
            assert_round_trip(&V::Zset(scored), version);
            let fields: Vec<(E, E, Option<i64>)> =
                elems.iter().zip(elems.iter().rev()).map(|(k, v)| (k.clone(), v.clone(), None)).collect();
            assert_round_trip(&V::Hash(fields), version);
        }
    }

    #[test]
    fn scores() {
        let odd = [
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -0.0,
            0.0,
            1e300,
            -1e300,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            0.1,
            1.0 / 3.0,
            3.0,
            -2.5e-10,
            9007199254740993.0,
            123456789012345680000.0,
        ];
        let v = V::Zset(odd.iter().enumerate().map(|(i, s)| (E::I(i as i64), *s)).collect());
        assert_round_trip(&v, 6);
        // The codes and texts themselves.
        let text = |s: f64| {
            let p = build(&V::Zset(vec![(b(b"m"), s)]), 6);
            // type, count, member (2 bytes), then the score up to the footer.
            p[4..p.len() - 10].to_vec()
        };
        assert_eq!(text(f64::NAN), [253]);
        assert_eq!(text(f64::INFINITY), [254]);
        assert_eq!(text(f64::NEG_INFINITY), [255]);
        assert_eq!(text(3.0), b"\x013");
        assert_eq!(text(-0.0), b"\x02-0");
        assert_eq!(text(1e300), b"\x051e300");
        assert_eq!(text(5e-324), b"\x065e-324");
        assert_eq!(text(0.1), b"\x030.1");
        // The longest shortest-round-trip texts stay far below the 253 codes.
        for s in [f64::MIN, -f64::MIN_POSITIVE, -2.2250738585072014e-308, -1.2345678901234567e-100] {
            assert!(text(s).len() <= 25, "{s}: {:?}", text(s));
        }
    }

    #[test]
    fn length_forms() {
        for (n, want) in [
            (0u64, &[0u8][..]),
            (63, &[63]),
            (64, &[0x40, 64]),
            (16383, &[0x7f, 0xff]),
            (16384, &[0x80, 0, 0, 0x40, 0]),
            (u32::MAX as u64, &[0x80, 0xff, 0xff, 0xff, 0xff]),
            (1 << 32, &[0x81, 0, 0, 0, 1, 0, 0, 0, 0]),
        ] {
            let (b, len) = encode_len(n);
            assert_eq!(&b[..len], want, "{n}");
        }
        // Counts and element lengths in the 14- and 32-bit forms round-trip.
        let big = vec![b'x'; 70_000];
        assert_round_trip(&V::List(vec![E::B(big.clone()), b(&big[..16384]), b(&big[..64])]), 6);
        assert_round_trip(&V::Set((0..20_000).map(E::I).collect()), 6);
        assert_round_trip(&V::List((0..100).map(|i| E::B(vec![b'a'; i])).collect()), 6);
    }

    #[test]
    fn lengths_of_2_to_the_32_only_for_rdb_8() {
        let mut builder = PayloadBuilder::new(usize::MAX);
        push(&mut builder, &V::List(vec![b(b"a")]), 1).unwrap();
        // No test can hold a 4 GiB element: pretend one was seen.
        builder.wide = true;
        assert_eq!(builder.finish(7).unwrap_err(), Refusal::TooLongForVersion);
        assert!(builder.finish(8).is_ok());
    }

    #[test]
    fn byte_limit() {
        let v = V::List(vec![b(b"abc"), b(b"de"), E::I(1000)]);
        let size = 4 + 3 + 3; // each with its length byte (or integer code)
        let mut exact = PayloadBuilder::new(size);
        push(&mut exact, &v, 1).unwrap();
        assert_eq!(exact.len(), size);
        assert!(exact.finish(6).is_ok());
        let mut short = PayloadBuilder::new(size - 1);
        assert_eq!(push(&mut short, &v, 1).unwrap_err(), Refusal::TooBig);
        // Refused for good: later pieces and finish say so too.
        assert_eq!(with_chunk(&V::List(vec![b(b"")]), |c| short.push(c)).unwrap_err(), Refusal::TooBig);
        assert_eq!(short.finish(6).unwrap_err(), Refusal::TooBig);
        // A huge element is measured, not copied, before it is refused.
        let mut small = PayloadBuilder::new(100);
        let huge = V::Set(vec![b(b"ok"), E::B(vec![0; 1 << 20])]);
        assert_eq!(push(&mut small, &huge, 5).unwrap_err(), Refusal::TooBig);
        assert!(small.buf.capacity() < 1 << 20, "{}", small.buf.capacity());
        // Scores and hash pairs count too.
        let z = V::Zset(vec![(b(b"m"), 0.1)]);
        assert_eq!(push(&mut PayloadBuilder::new(6), &z, 1), Ok(()));
        assert_eq!(push(&mut PayloadBuilder::new(5), &z, 1), Err(Refusal::TooBig));
        let h = V::Hash(vec![(b(b"f"), E::I(5), None)]);
        assert_eq!(push(&mut PayloadBuilder::new(4), &h, 1), Ok(()));
        assert_eq!(push(&mut PayloadBuilder::new(3), &h, 1), Err(Refusal::TooBig));
        // After reset, the next key starts afresh.
        short.reset();
        push(&mut short, &V::List(vec![b(b"x")]), 1).unwrap();
        assert_round_trip(&V::List(vec![b(b"x")]), 6);
        assert_eq!(decode(&short.finish(6).unwrap().to_vec()).1, V::List(vec![b(b"x")]));
    }

    #[test]
    fn refusals() {
        let ttl = V::Hash(vec![(b(b"a"), b(b"1"), None), (b(b"b"), b(b"2"), Some(1_700_000_000_000))]);
        let mut builder = PayloadBuilder::new(1 << 20);
        assert_eq!(push(&mut builder, &ttl, 1), Err(Refusal::FieldTtl));
        assert_eq!(builder.finish(6).unwrap_err(), Refusal::FieldTtl);
        builder.reset();
        assert_eq!(builder.finish(6).unwrap_err(), Refusal::Empty, "no pieces");
        assert_eq!(push(&mut builder, &V::Set(vec![]), 1), Ok(()));
        assert_eq!(builder.finish(6).unwrap_err(), Refusal::Empty, "empty pieces");
        builder.reset();
        push(&mut builder, &V::Set(vec![b(b"a")]), 1).unwrap();
        assert_eq!(push(&mut builder, &V::List(vec![b(b"a")]), 1), Err(Refusal::NotPlain), "mixed types");
        builder.reset();
        assert_eq!(builder.push(&Chunk::String(Elem::Bytes(b"s"))), Err(Refusal::NotPlain));
    }

    #[test]
    fn footer_is_version_and_crc() {
        let f = footer(b"\x00\x03abc", 9);
        assert_eq!(&f[..2], &[9, 0]);
        assert_eq!(u64::from_le_bytes(f[2..].try_into().unwrap()), crate::crc64::checksum(b"\x00\x03abc\x09\x00"));
    }

    fn elem() -> impl Strategy<Value = E> {
        prop_oneof![
            any::<i64>().prop_map(E::I),
            (-70_000i64..70_000).prop_map(E::I),
            proptest::collection::vec(any::<u8>(), 0..80).prop_map(E::B),
            proptest::collection::vec(any::<u8>(), 16_380..16_390).prop_map(E::B),
        ]
    }

    fn score() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            (-1000i32..1000).prop_map(f64::from),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
        ]
    }

    fn value() -> impl Strategy<Value = V> {
        let elems = || proptest::collection::vec(elem(), 1..40);
        prop_oneof![
            elems().prop_map(V::List),
            elems().prop_map(V::Set),
            proptest::collection::vec((elem(), score()), 1..40).prop_map(V::Zset),
            proptest::collection::vec((elem(), elem()), 1..40)
                .prop_map(|f| V::Hash(f.into_iter().map(|(k, v)| (k, v, None)).collect())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// What the builder writes, in any pieces, decodes back to the same elements with
        /// the project's decoder; and a value is refused exactly when its encoded elements
        /// pass the limit.
        #[test]
        fn decodes_back(v in value(), piece in 1usize..10, version in prop_oneof![Just(6u16), Just(7), Just(9)], cut in 0usize..3) {
            assert_round_trip(&v, version);
            let mut whole = PayloadBuilder::new(usize::MAX);
            push(&mut whole, &v, piece).unwrap();
            let size = whole.len();
            let limit = size + 1 - cut.min(size + 1);
            let mut limited = PayloadBuilder::new(limit);
            let r = push(&mut limited, &v, piece);
            prop_assert_eq!(r.is_ok(), size <= limit);
            if r.is_ok() {
                prop_assert_eq!(limited.finish(version).unwrap().to_vec(), whole.finish(version).unwrap().to_vec());
            }
        }
    }
}
