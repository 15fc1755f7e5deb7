//! Decoder tests on RDB files built here byte by byte: every encoding the builder can
//! write round-trips through the decoder whatever the input piece sizes; hostile and
//! broken input gives the right error at the right offset.

use proptest::prelude::*;

use super::super::compact::test_support::T;
use super::super::compact::{intset, listpack, ziplist, zipmap};
use super::super::{lzf, Decoder, DecoderOptions, Error, ErrorKind};
use crate::crc64;
use crate::rdb::record::*;

/// Builds RDB bytes for tests.
struct Rdb {
    out: Vec<u8>,
}

impl Rdb {
    fn new(header: &str) -> Rdb {
        Rdb { out: header.as_bytes().to_vec() }
    }

    fn byte(&mut self, b: u8) -> &mut Rdb {
        self.out.push(b);
        self
    }

    fn raw(&mut self, b: &[u8]) -> &mut Rdb {
        self.out.extend_from_slice(b);
        self
    }

    fn len(&mut self, n: u64) -> &mut Rdb {
        if n < 64 {
            self.out.push(n as u8);
        } else if n < 16384 {
            self.out.push(0x40 | (n >> 8) as u8);
            self.out.push(n as u8);
        } else if n <= u32::MAX as u64 {
            self.out.push(0x80);
            self.out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.out.push(0x81);
            self.out.extend_from_slice(&n.to_be_bytes());
        }
        self
    }

    fn str(&mut self, s: &[u8]) -> &mut Rdb {
        self.len(s.len() as u64).raw(s)
    }

    /// A string in the encoding `how` picks: 0 raw, 1 integer if possible, 2 LZF.
    fn str_as(&mut self, s: &[u8], how: u8) -> &mut Rdb {
        if how == 1 {
            if let Some(i) = canonical_int(s).filter(|i| i32::try_from(*i).is_ok()) {
                if let Ok(b) = i8::try_from(i) {
                    return self.byte(0xc0).byte(b as u8);
                }
                if let Ok(h) = i16::try_from(i) {
                    return self.byte(0xc1).raw(&h.to_le_bytes());
                }
                return self.byte(0xc2).raw(&(i as i32).to_le_bytes());
            }
        }
        if how == 2 {
            let c = lzf::compress(s);
            return self.byte(0xc3).len(c.len() as u64).len(s.len() as u64).raw(&c);
        }
        self.str(s)
    }

    fn key(&mut self, t: u8, key: &[u8], expire: Option<i64>) -> &mut Rdb {
        if let Some(ms) = expire {
            self.byte(0xfc).raw(&ms.to_le_bytes());
        }
        self.byte(t).str(key)
    }

    fn end(&mut self) -> Vec<u8> {
        self.out.push(0xff);
        let crc = crc64::checksum(&self.out);
        self.out.extend_from_slice(&crc.to_le_bytes());
        std::mem::take(&mut self.out)
    }
}

/// The integer a string is the canonical decimal form of, as Redis decides.
fn canonical_int(s: &[u8]) -> Option<i64> {
    let t = std::str::from_utf8(s).ok()?;
    let i: i64 = t.parse().ok()?;
    (i.to_string() == t).then_some(i)
}

fn elem(s: &[u8]) -> T {
    match canonical_int(s) {
        Some(i) => T::I(i),
        None => T::B(s.to_vec()),
    }
}

/// An owned copy of what a record says, for collecting records in tests.
#[derive(Debug, Clone, PartialEq)]
enum Rec {
    Key { key: Vec<u8>, expire: Option<i64>, encoding: Encoding },
    Str(Vec<u8>),
    Elems(Vec<Vec<u8>>),
    Scored(Vec<(Vec<u8>, f64)>),
    Fields(Vec<(Vec<u8>, Vec<u8>, Option<i64>)>),
    Module(ModuleId, Vec<u8>),
    End(Checksum),
    /// Any other record, by its Debug text.
    Other(String),
}

fn own(r: &Record) -> Rec {
    match r {
        Record::Key(k) => Rec::Key { key: k.key.to_vec(), expire: k.expire_at_ms, encoding: k.encoding },
        Record::Value(Chunk::String(e)) => Rec::Str(e.to_vec()),
        Record::Value(Chunk::List(v) | Chunk::Set(v)) => Rec::Elems(v.iter().map(|e| e.to_vec()).collect()),
        Record::Value(Chunk::Zset(z)) => Rec::Scored(z.iter().map(|(m, s)| (m.to_vec(), s)).collect()),
        Record::Value(Chunk::Hash(h)) => {
            Rec::Fields(h.iter().map(|f| (f.field.to_vec(), f.value.to_vec(), f.expire_at_ms)).collect())
        }
        Record::Value(Chunk::Module { module, payload }) => Rec::Module(*module, payload.to_vec()),
        Record::End(c) => Rec::End(*c),
        other => Rec::Other(format!("{other:?}")),
    }
}

/// Decodes `data` fed in pieces of `piece` bytes (0 = all at once).
fn decode(data: &[u8], piece: usize, opts: DecoderOptions) -> Result<Vec<Rec>, Error> {
    let mut d = Decoder::with_options(opts);
    let mut out = Vec::new();
    let piece = if piece == 0 { data.len().max(1) } else { piece };
    for p in data.chunks(piece) {
        d.feed(p);
        while let Some(r) = d.next_record()? {
            out.push(own(&r));
        }
    }
    d.finish();
    while let Some(r) = d.next_record()? {
        out.push(own(&r));
    }
    Ok(out)
}

fn decode_err(data: &[u8]) -> Error {
    decode(data, 0, DecoderOptions::default()).expect_err("decoding should fail")
}

/// A key's logical content, as the model for the property test.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Zset(Vec<(Vec<u8>, f64)>),
    Hash(Vec<(Vec<u8>, Vec<u8>, Option<i64>)>),
}

/// Collects the decoded records back into (key, expiry, value, encoding) per key.
fn logical(records: &[Rec]) -> Vec<(Vec<u8>, Option<i64>, Value, Encoding)> {
    let mut out: Vec<(Vec<u8>, Option<i64>, Value, Encoding)> = Vec::new();
    for r in records {
        match r {
            Rec::Key { key, expire, encoding } => {
                let v = match encoding.kind() {
                    Kind::String => Value::Str(Vec::new()),
                    Kind::List => Value::List(Vec::new()),
                    Kind::Set => Value::Set(Vec::new()),
                    Kind::Zset => Value::Zset(Vec::new()),
                    _ => Value::Hash(Vec::new()),
                };
                out.push((key.clone(), *expire, v, *encoding));
            }
            Rec::Str(_) | Rec::Elems(_) | Rec::Scored(_) | Rec::Fields(_) => {
                let Some((_, _, v, _)) = out.last_mut() else { panic!("value outside a key") };
                match (v, r) {
                    (Value::Str(s), Rec::Str(e)) => s.clone_from(e),
                    (Value::List(l), Rec::Elems(c)) | (Value::Set(l), Rec::Elems(c)) => l.extend(c.iter().cloned()),
                    (Value::Zset(z), Rec::Scored(c)) => z.extend(c.iter().cloned()),
                    (Value::Hash(h), Rec::Fields(c)) => h.extend(c.iter().cloned()),
                    (v, c) => panic!("chunk {c:?} in {v:?}"),
                }
            }
            _ => {}
        }
    }
    out
}

/// Writes `value` with the encoding picked by `how`; returns the type byte used.
fn write_value(rdb: &mut Rdb, key: &[u8], expire: Option<i64>, value: &Value, how: u8, sh: u8) -> u8 {
    let blob = |rdb: &mut Rdb, b: &[u8]| {
        rdb.str_as(b, if sh % 2 == 0 { 0 } else { 2 });
    };
    match value {
        Value::Str(s) => {
            rdb.key(0, key, expire).str_as(s, how % 3);
            0
        }
        Value::List(l) => {
            let elems: Vec<T> = l.iter().map(|e| elem(e)).collect();
            match how % 4 {
                0 => {
                    rdb.key(1, key, expire).len(l.len() as u64);
                    for e in l {
                        rdb.str_as(e, sh % 3);
                    }
                    1
                }
                1 => {
                    rdb.key(10, key, expire);
                    blob(rdb, &ziplist::build::ziplist(&elems, false));
                    10
                }
                2 => {
                    let nodes: Vec<&[T]> = elems.chunks(3).collect();
                    rdb.key(14, key, expire).len(nodes.len() as u64);
                    for n in nodes {
                        blob(rdb, &ziplist::build::ziplist(n, false));
                    }
                    14
                }
                _ => {
                    // Alternate packed listpack nodes and plain single-element nodes.
                    let mut nodes: Vec<(u64, Vec<u8>)> = Vec::new();
                    for (i, part) in elems.chunks(2).enumerate() {
                        // Plain nodes hold one big element; Redis refuses empty ones.
                        if i % 2 == 1 && part.len() == 1 && !part[0].text().is_empty() {
                            nodes.push((1, part[0].text()));
                        } else {
                            nodes.push((2, listpack::build::listpack(part)));
                        }
                    }
                    rdb.key(18, key, expire).len(nodes.len() as u64);
                    for (container, data) in nodes {
                        rdb.len(container);
                        blob(rdb, &data);
                    }
                    18
                }
            }
        }
        Value::Set(s) => {
            let ints: Option<Vec<i64>> = s.iter().map(|m| canonical_int(m)).collect();
            match (how % 3, ints) {
                (0, Some(ints)) if !ints.is_empty() => {
                    rdb.key(11, key, expire);
                    blob(rdb, &intset::build::intset(&ints, 8));
                    11
                }
                (1, _) => {
                    rdb.key(20, key, expire);
                    blob(rdb, &listpack::build::listpack(&s.iter().map(|m| elem(m)).collect::<Vec<_>>()));
                    20
                }
                _ => {
                    rdb.key(2, key, expire).len(s.len() as u64);
                    for m in s {
                        rdb.str_as(m, sh % 3);
                    }
                    2
                }
            }
        }
        Value::Zset(z) => {
            let score_elem = |s: f64| {
                if s.fract() == 0.0 && s.abs() < 1e15 {
                    T::I(s as i64)
                } else {
                    T::B(ryu::Buffer::new().format(s).as_bytes().to_vec())
                }
            };
            let flat: Vec<T> = z.iter().flat_map(|(m, s)| [elem(m), score_elem(*s)]).collect();
            match how % 4 {
                0 => {
                    rdb.key(3, key, expire).len(z.len() as u64);
                    for (m, s) in z {
                        let text = ryu::Buffer::new().format(*s).to_string();
                        rdb.str_as(m, sh % 3).byte(text.len() as u8).raw(text.as_bytes());
                    }
                    3
                }
                1 => {
                    rdb.key(5, key, expire).len(z.len() as u64);
                    for (m, s) in z {
                        rdb.str_as(m, sh % 3).raw(&s.to_le_bytes());
                    }
                    5
                }
                2 => {
                    rdb.key(12, key, expire);
                    blob(rdb, &ziplist::build::ziplist(&flat, false));
                    12
                }
                _ => {
                    rdb.key(17, key, expire);
                    blob(rdb, &listpack::build::listpack(&flat));
                    17
                }
            }
        }
        Value::Hash(h) => {
            let with_ttl = h.iter().any(|(_, _, t)| t.is_some());
            match (how % 4, with_ttl) {
                (_, true) if how % 2 == 0 => {
                    let min = h.iter().filter_map(|(_, _, t)| *t).min().unwrap_or(0);
                    rdb.key(24, key, expire).raw(&min.to_le_bytes()).len(h.len() as u64);
                    for (f, v, t) in h {
                        rdb.len(t.map_or(0, |t| (t - min + 1) as u64)).str_as(f, sh % 3).str_as(v, sh % 3);
                    }
                    24
                }
                (_, true) => {
                    let flat: Vec<T> =
                        h.iter().flat_map(|(f, v, t)| [elem(f), elem(v), T::I(t.unwrap_or(0))]).collect();
                    rdb.key(25, key, expire).raw(&0i64.to_le_bytes());
                    blob(rdb, &listpack::build::listpack(&flat));
                    25
                }
                (0, _) => {
                    rdb.key(4, key, expire).len(h.len() as u64);
                    for (f, v, _) in h {
                        rdb.str_as(f, sh % 3).str_as(v, sh % 3);
                    }
                    4
                }
                (1, _) => {
                    let pairs: Vec<(Vec<u8>, Vec<u8>)> = h.iter().map(|(f, v, _)| (f.clone(), v.clone())).collect();
                    rdb.key(9, key, expire);
                    blob(rdb, &zipmap::build::zipmap(&pairs, sh % 3));
                    9
                }
                (2, _) => {
                    let flat: Vec<T> = h.iter().flat_map(|(f, v, _)| [elem(f), elem(v)]).collect();
                    rdb.key(13, key, expire);
                    blob(rdb, &ziplist::build::ziplist(&flat, false));
                    13
                }
                _ => {
                    let flat: Vec<T> = h.iter().flat_map(|(f, v, _)| [elem(f), elem(v)]).collect();
                    rdb.key(16, key, expire);
                    blob(rdb, &listpack::build::listpack(&flat));
                    16
                }
            }
        }
    }
}

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..12),
        (-70000i64..70000).prop_map(|i| i.to_string().into_bytes()),
        any::<i64>().prop_map(|i| i.to_string().into_bytes()),
        (0usize..300).prop_map(|n| vec![b'x'; n]),
        Just(b"007".to_vec()),
        Just(b"-0".to_vec()),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    let small = || proptest::collection::vec(arb_bytes(), 0..12);
    let score = prop_oneof![
        (-1000i64..1000).prop_map(|i| i as f64),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ];
    let ttl = prop_oneof![Just(None), (1i64..(1 << 47)).prop_map(Some)];
    prop_oneof![
        arb_bytes().prop_map(Value::Str),
        small().prop_map(Value::List),
        small().prop_map(|mut v| {
            v.sort();
            v.dedup();
            Value::Set(v)
        }),
        proptest::collection::vec((-5000i64..5000).prop_map(|i| i.to_string().into_bytes()), 1..10).prop_map(|mut v| {
            v.sort();
            v.dedup();
            Value::Set(v)
        }),
        proptest::collection::vec((arb_bytes(), score), 0..10).prop_map(Value::Zset),
        proptest::collection::vec((arb_bytes(), arb_bytes(), ttl), 0..10).prop_map(Value::Hash),
    ]
}

/// What the decoder should give back for `value` written with type byte `t`: scores
/// written as text come back as the double they print as; hashes without TTL support
/// lose nothing because the generator only puts TTLs in types 24/25.
fn expected_back(value: &Value, t: u8) -> Value {
    match (value, t) {
        // An intset is kept in numeric order.
        (Value::Set(s), 11) => {
            let mut s = s.clone();
            s.sort_by_key(|m| canonical_int(m));
            Value::Set(s)
        }
        (Value::Hash(h), 4 | 9 | 13 | 16) => Value::Hash(h.iter().map(|(f, v, _)| (f.clone(), v.clone(), None)).collect()),
        (Value::Zset(z), 3 | 12 | 17) => Value::Zset(
            z.iter()
                .map(|(m, s)| {
                    let text = ryu::Buffer::new().format(*s).to_string();
                    (m.clone(), text.parse::<f64>().unwrap_or(*s))
                })
                .collect(),
        ),
        _ => value.clone(),
    }
}

proptest! {
    /// Random datasets in every encoding the builder knows, fed in random pieces and
    /// cut into random chunk sizes, come back exactly.
    #[test]
    fn random_datasets_round_trip(
        keys in proptest::collection::vec((arb_value(), any::<u8>(), any::<u8>(), proptest::option::of(0i64..1 << 45)), 1..12),
        piece in 0usize..40,
        chunk in 1usize..6,
        header in 0usize..3,
    ) {
        let mut rdb = Rdb::new(["REDIS0009", "REDIS0011", "REDIS0012"][header]);
        rdb.byte(0xfe).len(3);
        let mut want = Vec::new();
        for (i, (value, how, sh, expire)) in keys.iter().enumerate() {
            let key = format!("key:{i}").into_bytes();
            let t = write_value(&mut rdb, &key, *expire, value, *how, *sh);
            want.push((key, *expire, expected_back(value, t), t));
        }
        let data = rdb.end();
        let opts = DecoderOptions { chunk_elements: chunk, chunk_bytes: 40 * chunk, ..DecoderOptions::default() };
        let records = decode(&data, piece, opts).unwrap();
        prop_assert!(matches!(records.last(), Some(Rec::End(Checksum::Verified(_)))));
        let got = logical(&records);
        prop_assert_eq!(got.len(), want.len());
        for ((gk, ge, gv, genc), (wk, we, wv, wt)) in got.iter().zip(&want) {
            prop_assert_eq!(gk, wk);
            prop_assert_eq!(ge, we);
            prop_assert_eq!(genc.type_byte(), *wt);
            prop_assert_eq!(gv, wv, "key {}", String::from_utf8_lossy(gk));
        }
    }
}

#[test]
fn hostile_lengths_are_refused_without_allocating() {
    // A string that claims 2^60 bytes.
    let mut rdb = Rdb::new("REDIS0009");
    rdb.byte(0).str(b"k").byte(0x81).raw(&(1u64 << 60).to_be_bytes());
    let e = decode_err(&rdb.out);
    assert!(matches!(e.kind(), ErrorKind::TooLarge { len, .. } if *len == 1 << 60), "{e}");
    assert_eq!(e.key(), Some(&b"k"[..]));
    assert_eq!(e.offset(), 12);

    // A list that claims 2^40 elements, then ends: a truncation error, after a few bytes.
    let mut rdb = Rdb::new("REDIS0009");
    rdb.byte(1).str(b"big").len(1 << 40).str(b"a");
    let e = decode_err(&rdb.out);
    assert!(matches!(e.kind(), ErrorKind::Truncated { .. }), "{e}");

    // LZF that claims 1 GB from 4 bytes of input: refused, without reserving 1 GB.
    let mut rdb = Rdb::new("REDIS0009");
    rdb.byte(0).str(b"z").byte(0xc3).len(2).len(1 << 30).raw(&[0x00, b'a']);
    let e = decode_err(&rdb.out);
    assert!(matches!(e.kind(), ErrorKind::Lzf { .. }), "{e}");
}

#[test]
fn errors_say_where_and_what() {
    let mut rdb = Rdb::new("REDIS0006");
    rdb.byte(0xfe).len(2).byte(10).str(b"mylist").str(b"not a ziplist at all");
    let e = decode_err(&rdb.out);
    let msg = e.to_string();
    // The offset of the broken value (after the 9-byte header, SELECTDB 2 and the key).
    assert!(msg.contains("at byte offset 19"), "{msg}");
    assert!(msg.contains("db 2, key \"mylist\""), "{msg}");
    assert!(msg.contains("corrupt ziplist"), "{msg}");
    assert_eq!(e.db(), Some(2));

    let e = decode_err(b"HELLO WORLD");
    assert!(matches!(e.kind(), ErrorKind::BadMagic { .. }), "{e}");

    let mut rdb = Rdb::new("REDIS0009");
    rdb.byte(8).str(b"k");
    let e = decode_err(&rdb.out);
    let header = RdbVersion { magic: Magic::Redis, version: 9 };
    assert_eq!((e.kind(), e.offset()), (&ErrorKind::UnknownType { byte: 8, header }, 9));
    assert!(e.to_string().ends_with("unknown opcode or value type byte 8 (0x08) in a REDIS0009 file"), "{e}");

    // Valkey's opcodes mean nothing in a REDIS file, nor Redis 8.6's KEY_META in an
    // older one.
    let mut rdb = Rdb::new("REDIS0012");
    rdb.byte(0xf3);
    assert!(matches!(decode_err(&rdb.out).kind(), ErrorKind::UnknownType { byte: 0xf3, .. }));
}

#[test]
fn checksum_mismatch_is_an_error_and_zero_means_disabled() {
    let mut rdb = Rdb::new("REDIS0009");
    rdb.byte(0).str(b"k").str(b"v");
    let mut data = rdb.end();
    let n = data.len();
    data[n - 3] ^= 0x40;
    let e = decode_err(&data);
    assert!(matches!(e.kind(), ErrorKind::ChecksumMismatch { .. }), "{e}");
    assert_eq!(e.offset(), n as u64 - 8);
    data[n - 8..].fill(0);
    let r = decode(&data, 0, DecoderOptions::default()).unwrap();
    assert_eq!(r.last(), Some(&Rec::End(Checksum::Disabled)));
}

#[test]
fn module_values_pass_through_and_v1_stops_with_the_module_name() {
    // "ReJSON-RL" id with encoding version 3, then a UINT, a STRING and EOF.
    let charset = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let id = b"ReJSON-RL".iter().fold(0u64, |id, c| (id << 6) | charset.iter().position(|x| x == c).unwrap() as u64);
    let id = (id << 10) | 3;
    let mut rdb = Rdb::new("REDIS0009");
    rdb.byte(7).str(b"doc").len(id).len(2).len(42).len(5).str(b"{}").len(0);
    let value_start = rdb.out.len() - (9 + 1 + 1 + 1 + 3 + 1);
    let payload = rdb.out[value_start..].to_vec();
    let records = decode(&rdb.end(), 1, DecoderOptions::default()).unwrap();
    let module = records.iter().find_map(|r| match r {
        Rec::Module(module, payload) => Some((*module, payload.clone())),
        _ => None,
    });
    let (module, got) = module.expect("module value");
    assert_eq!(module.name(), "ReJSON-RL");
    assert_eq!(&got[..], &payload[..]);

    let mut rdb = Rdb::new("REDIS0008");
    rdb.byte(6).str(b"old").len(id).raw(b"opaque bytes");
    let e = decode_err(&rdb.out);
    assert_eq!(e.kind(), &ErrorKind::ModuleV1 { module: "ReJSON-RL".into() });
    assert_eq!(e.key(), Some(&b"old"[..]));
}

#[test]
fn valkey_hash2_slot_import_and_inline_command() {
    let mut rdb = Rdb::new("VALKEY080");
    rdb.byte(0xf3).str(b"job-1").len(2).len(0).len(99).len(200).len(300);
    rdb.byte(0xf2).raw(b"*2\r\n$3\r\nDEL\r\n$1\r\nx\r\n");
    rdb.byte(22).str(b"h").len(2);
    rdb.str(b"a").str(b"1").raw(&(-1i64).to_le_bytes());
    rdb.str(b"b").str(b"2").raw(&4102444800000i64.to_le_bytes());
    let records = decode(&rdb.end(), 3, DecoderOptions::default()).unwrap();
    let slot_import = Record::SlotImport { job: b"job-1", ranges: &[(0, 99), (200, 300)] };
    assert!(records.contains(&Rec::Other(format!("{slot_import:?}"))), "{records:?}");
    assert!(records.contains(&Rec::Other(r#"Command { args: [b"DEL", b"x"] }"#.into())), "{records:?}");
    let (_, _, v, enc) = logical(&records).remove(0);
    assert_eq!(enc, Encoding::ValkeyHash2);
    assert_eq!(v, Value::Hash(vec![(b"a".to_vec(), b"1".to_vec(), None), (b"b".to_vec(), b"2".to_vec(), Some(4102444800000))]));

    // The same type byte in a Redis 7.4 file is the release-candidate layout.
    let mut rdb = Rdb::new("REDIS0012");
    rdb.byte(22).str(b"h").len(1).len(4102444800000).str(b"a").str(b"1");
    rdb.byte(23).str(b"l");
    rdb.str(&listpack::build::listpack(&[T::B(b"f".to_vec()), T::B(b"v".to_vec()), T::I(0)]));
    let got = logical(&decode(&rdb.end(), 0, DecoderOptions::default()).unwrap());
    assert_eq!(got[0].2, Value::Hash(vec![(b"a".to_vec(), b"1".to_vec(), Some(4102444800000))]));
    assert_eq!(got[0].3, Encoding::HashMetadataPreGa);
    assert_eq!(got[1].2, Value::Hash(vec![(b"f".to_vec(), b"v".to_vec(), None)]));
}

#[test]
fn pre_ga_functions_and_slot_info() {
    let mut rdb = Rdb::new("REDIS0010");
    rdb.byte(0xf6).str(b"myfunc").str(b"LUA").len(1).str(b"a description").str(b"return 1");
    rdb.byte(0xf4).len(12).len(3).len(1);
    let records = decode(&rdb.end(), 2, DecoderOptions::default()).unwrap();
    let function = Record::FunctionPreGa {
        name: b"myfunc",
        engine: b"LUA",
        description: Some(b"a description"),
        code: b"return 1",
    };
    assert!(records.contains(&Rec::Other(format!("{function:?}"))), "{records:?}");
    let slot_info = Record::SlotInfo { slot: 12, size: 3, expires_size: 1 };
    assert!(records.contains(&Rec::Other(format!("{slot_info:?}"))));
}

#[test]
fn quicklist_containers_are_checked() {
    let mut rdb = Rdb::new("REDIS0010");
    rdb.byte(18).str(b"l").len(1).len(3).str(b"x");
    assert!(decode_err(&rdb.out).to_string().contains("neither 1 (plain) nor 2 (packed)"));
    let mut rdb = Rdb::new("REDIS0010");
    rdb.byte(18).str(b"l").len(1).len(2).str(b"");
    assert!(decode_err(&rdb.out).to_string().contains("empty node"));
}

#[test]
fn stream_node_keys_must_be_ids() {
    let mut rdb = Rdb::new("REDIS0009");
    rdb.byte(15).str(b"s").len(1).str(b"short").str(&listpack::build::listpack(&[T::I(0)]));
    assert!(decode_err(&rdb.out).to_string().contains("node key is 5 bytes"));
}

#[test]
fn nothing_after_the_end_is_consumed() {
    let mut rdb = Rdb::new("REDIS0009");
    rdb.byte(0).str(b"k").str(b"v");
    let mut data = rdb.end();
    let rdb_len = data.len();
    data.extend_from_slice(b"trailing");
    let mut d = Decoder::new();
    d.feed(&data);
    while d.next_record().unwrap().is_some() {}
    assert!(d.is_done());
    assert_eq!(d.offset(), rdb_len as u64);
    assert_eq!(d.buffered(), b"trailing");
}

#[test]
fn after_an_error_the_decoder_stays_failed() {
    let mut d = Decoder::new();
    d.feed(b"REDIS0009\x08");
    assert!(d.next_record().unwrap().is_some()); // header
    assert!(d.next_record().is_err());
    d.feed(b"\x00\x01k\x01v\xff");
    assert!(matches!(d.next_record().unwrap_err().kind(), ErrorKind::AfterError));
}

#[test]
fn zero_chunk_limits_still_make_progress() {
    let mut rdb = Rdb::new("REDIS0010");
    rdb.byte(10).str(b"l").str(&ziplist::build::ziplist(&[T::I(1), T::I(2), T::I(3)], false));
    rdb.byte(1).str(b"m").len(2).str(b"a").str(b"b");
    let opts = DecoderOptions { chunk_elements: 0, chunk_bytes: 0, ..DecoderOptions::default() };
    let got = logical(&decode(&rdb.end(), 0, opts).unwrap());
    assert_eq!(got[0].2, Value::List(vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]));
    assert_eq!(got[1].2, Value::List(vec![b"a".to_vec(), b"b".to_vec()]));
}

#[test]
fn key_metadata_carries_over_other_records_like_redis_loaders() {
    // Redis 5.0+ keep an expiry/LFU opcode pending across other opcodes until a key.
    let mut rdb = Rdb::new("REDIS0011");
    rdb.byte(0xfc).raw(&4102444800000i64.to_le_bytes()).byte(0xf9).byte(7);
    rdb.byte(0xfa).str(b"slot-info").str(b"1,2,0").byte(0xfe).len(1);
    rdb.byte(0).str(b"k").str(b"v");
    rdb.byte(0).str(b"plain").str(b"w");
    let records = decode(&rdb.end(), 1, DecoderOptions::default()).unwrap();
    let keys: Vec<&Rec> = records.iter().filter(|r| matches!(r, Rec::Key { .. })).collect();
    assert_eq!(keys[0], &Rec::Key { key: b"k".to_vec(), expire: Some(4102444800000), encoding: Encoding::String });
    assert_eq!(keys[1], &Rec::Key { key: b"plain".to_vec(), expire: None, encoding: Encoding::String });
}

#[test]
fn long_valkey_records_cost_no_rereading_in_small_pieces() {
    // 16384 slot ranges and a 20000-argument command, fed one byte at a time: each
    // byte must not re-read the record from its start (that was quadratic).
    let mut rdb = Rdb::new("VALKEY080");
    rdb.byte(0xf3).str(b"job").len(16384);
    for i in 0..16384 {
        rdb.len(i).len(i);
    }
    rdb.byte(0xf2).raw(b"*20000\r\n");
    for i in 0..20000 {
        let a = i.to_string();
        rdb.raw(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    let data = rdb.end();
    let started = std::time::Instant::now();
    let records = decode(&data, 1, DecoderOptions::default()).unwrap();
    let took = started.elapsed();
    let import = records.iter().find_map(|r| match r {
        Rec::Other(s) if s.starts_with("SlotImport") => Some(s.matches('(').count()),
        _ => None,
    });
    assert_eq!(import, Some(16384));
    let command = records.iter().find_map(|r| match r {
        Rec::Other(s) if s.starts_with("Command") => Some(s.matches("b\"").count()),
        _ => None,
    });
    assert_eq!(command, Some(20000));
    // Linear: ~250 KB byte by byte is milliseconds; the quadratic version took seconds.
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");

    // More ranges than a cluster has slots is corrupt.
    let mut rdb = Rdb::new("VALKEY080");
    rdb.byte(0xf3).str(b"job").len(16385);
    assert!(decode_err(&rdb.out).to_string().contains("16384 slots"));
    // A command bigger than the element limit is refused.
    let mut rdb = Rdb::new("VALKEY080");
    rdb.byte(0xf2).raw(b"*3\r\n$4\r\naaaa\r\n$4\r\nbbbb\r\n$4\r\ncccc\r\n");
    let opts = DecoderOptions { max_element_bytes: 10, ..DecoderOptions::default() };
    let e = decode(&rdb.end(), 0, opts).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::TooLarge { what: "inline command", .. }), "{e}");
}

