//! The classic small dumps from redis-rdb-tools' test suite (testdata/rdb/rdbtools, see
//! its README): each decodes, and what upstream's tests assert about it holds here.

use std::collections::BTreeMap;
use std::path::Path;

use redis_ferry::output::jsonl::JsonlWriter;
use redis_ferry::rdb::RdbReader;
use serde_json::{json, Value};

/// Keys as `(db, key) -> record`, plus the non-key records, of one file.
struct Dump {
    keys: BTreeMap<(u64, String), Value>,
    other: Vec<Value>,
}

impl Dump {
    fn value(&self, key: &str) -> &Value {
        &self.key(0, key)["value"]
    }

    fn key(&self, db: u64, key: &str) -> &Value {
        self.keys.get(&(db, key.to_string())).unwrap_or_else(|| panic!("no key {key:?} in db {db}"))
    }

    fn aux(&self, name: &str) -> Option<&str> {
        self.other.iter().find(|r| r["aux"] == name).and_then(|r| r["value"].as_str())
    }

    fn checksum(&self) -> &str {
        self.other.iter().find_map(|r| r["checksum"].as_str()).expect("no eof record")
    }
}

fn load(name: &str) -> Dump {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rdb/rdbtools").join(name);
    let mut reader = RdbReader::new(std::fs::File::open(&path).unwrap());
    let mut out = Vec::new();
    let mut w = JsonlWriter::new(&mut out);
    while let Some(r) = reader.next_record().unwrap_or_else(|e| panic!("{name}: {e}")) {
        w.record(&r).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let mut dump = Dump { keys: BTreeMap::new(), other: Vec::new() };
    for line in String::from_utf8(out).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        match v.get("key").and_then(Value::as_str) {
            Some(k) => {
                dump.keys.insert((v["db"].as_u64().unwrap(), k.to_string()), v);
            }
            None => dump.other.push(v),
        }
    }
    dump
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect()
}

#[test]
fn dictionary() {
    let d = load("dictionary.rdb");
    let h = d.value("force_dictionary").as_object().unwrap();
    assert_eq!(h.len(), 1000);
    assert!(h.iter().all(|(f, v)| f.len() == 50 && v.as_str().unwrap().len() == 50));
}

#[test]
fn easily_compressible_string_key() {
    let d = load("easily_compressible_string_key.rdb");
    assert_eq!(d.value(&"a".repeat(200)), "Key that redis should compress easily");
}

#[test]
fn empty_database() {
    let d = load("empty_database.rdb");
    assert!(d.keys.is_empty());
    assert_eq!(d.checksum(), "absent");
}

#[test]
fn hash_as_ziplist_and_zipmaps() {
    let want = json!({"a": "aa", "aa": "aaaa", "aaaaa": "aaaaaaaaaaaaaa"});
    assert_eq!(load("hash_as_ziplist.rdb").value("zipmap_compresses_easily"), &want);
    assert_eq!(load("zipmap_that_compresses_easily.rdb").value("zipmap_compresses_easily"), &want);
    assert_eq!(
        load("zipmap_that_doesnt_compress.rdb").value("zimap_doesnt_compress"),
        &json!({"MKD1G6": "2", "YNNXK": "F7TI"})
    );
}

#[test]
fn integer_keys() {
    let d = load("integer_keys.rdb");
    for (key, value) in [
        (125i64, "Positive 8 bit integer"),
        (-123, "Negative 8 bit integer"),
        (0xABAB, "Positive 16 bit integer"),
        (-0x7325, "Negative 16 bit integer"),
        (0x0AEDD325, "Positive 32 bit integer"),
        (-0x0AEDD325, "Negative 32 bit integer"),
    ] {
        assert_eq!(d.value(&key.to_string()), value);
    }
}

#[test]
fn intsets() {
    assert_eq!(strings(load("intset_16.rdb").value("intset_16")), ["32764", "32765", "32766"]);
    assert_eq!(strings(load("intset_32.rdb").value("intset_32")), ["2147418108", "2147418109", "2147418110"]);
    let v = 0x7ffefffefffefffci64;
    let want: Vec<String> = (v..v + 3).map(|x| x.to_string()).collect();
    assert_eq!(strings(load("intset_64.rdb").value("intset_64")), want);
}

#[test]
fn keys_with_expiry() {
    let d = load("keys_with_expiry.rdb");
    // 2022-12-25 10:11:12.573 UTC
    assert_eq!(d.key(0, "expires_ms_precision")["expire_at_ms"], 1671963072573i64);
}

#[test]
fn linkedlist() {
    let d = load("linkedlist.rdb");
    let l = strings(d.value("force_linkedlist"));
    assert_eq!(l.len(), 1000);
    assert!(l.iter().all(|e| e.len() == 50));
}

#[test]
fn multiple_databases() {
    let d = load("multiple_databases.rdb");
    assert_eq!(d.key(0, "key_in_zeroth_database")["value"], "zero");
    assert_eq!(d.key(2, "key_in_second_database")["value"], "second");
    assert_eq!(d.keys.len(), 2);
}

#[test]
fn non_ascii_values() {
    let d = load("non_ascii_values.rdb");
    assert_eq!(d.aux("redis-ver"), Some("3.2.6"));
    assert_eq!(d.value("int_value"), "123");
    assert_eq!(d.value("378"), "int_key_name");
    assert_eq!(d.value("utf8"), "\u{5d1}\u{5d3}\u{5d9}\u{5e7}\u{5d4}\u{1000f}123\u{5e2}\u{5d1}\u{5e8}\u{5d9}\u{5ea}");
    // Not UTF-8: base64 of the raw bytes.
    assert!(d.value("bin").as_str().unwrap().starts_with("base64:"));
    assert_eq!(d.checksum(), "verified");
}

#[test]
fn parser_filters() {
    let d = load("parser_filters.rdb");
    assert_eq!(d.keys.len(), 43);
    assert_eq!(d.value("k1"), "ssssssss");
    assert_eq!(d.value("k3"), "wwwwwwww");
    let types: std::collections::BTreeSet<&str> = d.keys.values().map(|k| k["type"].as_str().unwrap()).collect();
    assert_eq!(types.into_iter().collect::<Vec<_>>(), ["hash", "list", "set", "string", "zset"]);
    for z in ["z1", "z2", "z3", "z4"] {
        assert_eq!(d.key(0, z)["type"], "zset");
    }
}

#[test]
fn rdb_version_5_with_checksum() {
    let d = load("rdb_version_5_with_checksum.rdb");
    for (k, v) in [
        ("abcd", "efgh"),
        ("foo", "bar"),
        ("bar", "baz"),
        ("abcdef", "abcdef"),
        ("longerstring", "thisisalongerstring.idontknowwhatitmeans"),
        ("abc", "def"),
    ] {
        assert_eq!(d.value(k), v);
    }
    assert_eq!(d.checksum(), "verified");
}

#[test]
#[allow(clippy::approx_constant)] // 2.718 is the score stored in the file, not e
fn rdb_version_8_with_64b_length_and_scores() {
    let d = load("rdb_version_8_with_64b_length_and_scores.rdb");
    assert_eq!(d.value("foo"), "bar");
    let z = d.value("bigset").as_array().unwrap();
    assert_eq!(z.len(), 1000);
    assert!(z.iter().any(|p| p[0] == "finalfield" && p[1] == 2.718));
}

#[test]
fn redis_40_with_module() {
    let d = load("redis_40_with_module.rdb");
    assert_eq!(d.value("simplekey"), "someval");
    let m = d.key(0, "foo");
    assert_eq!(m["type"], "module");
    assert_eq!(m["value"]["module"], "ReJSON-RL");
    assert_eq!(d.checksum(), "disabled");
}

#[test]
fn redis_50_with_streams() {
    let d = load("redis_50_with_streams.rdb");
    assert_eq!(d.keys.len(), 14);
    let s = d.value("mystream");
    assert_eq!(s["entries"].as_array().unwrap().len(), 4);
    let groups: Vec<&str> = s["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(groups, ["mygroup", "mygroup2"]);
    let pending: usize = s["groups"].as_array().unwrap().iter().map(|g| g["pending"].as_array().unwrap().len()).sum();
    assert_eq!(pending, 1);
}

#[test]
fn redis_60_with_module_aux() {
    let d = load("redis_60_with_module_aux.rdb");
    assert!(d.keys.is_empty());
    assert!(d.other.iter().any(|r| r.get("module_aux").is_some()));
}

#[test]
fn sets_and_sorted_sets() {
    let d = load("regular_set.rdb");
    let mut set = strings(d.value("regular_set"));
    set.sort();
    assert_eq!(set, ["alpha", "beta", "delta", "gamma", "kappa", "phi"]);
    let z = load("regular_sorted_set.rdb");
    let z = z.value("force_sorted_set").as_array().unwrap();
    assert_eq!(z.len(), 500);
    let z = load("sorted_set_as_ziplist.rdb");
    let scores: Vec<f64> = z.value("sorted_set_as_ziplist").as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).collect();
    assert_eq!(scores, [1.0, 2.37, 3.423]);
}

#[test]
fn uncompressible_string_keys() {
    let d = load("uncompressible_string_keys.rdb");
    let mut lens: Vec<usize> = d.keys.keys().map(|(_, k)| k.len()).collect();
    lens.sort();
    assert_eq!(lens, [60, 16382, 16386]);
}

#[test]
fn ziplists() {
    let want: Vec<String> = (1..=6).map(|i| "a".repeat(6 * i)).collect();
    assert_eq!(strings(load("ziplist_that_compresses_easily.rdb").value("ziplist_compresses_easily")), want);
    let l = load("ziplist_that_doesnt_compress.rdb");
    assert_eq!(strings(l.value("ziplist_doesnt_compress"))[0], "aj2410");
    let mut want: Vec<i64> = (0..=12).collect();
    want.extend([-2, 13, 25, -61, 63, 16380, -16000, 65535, -65523, 4194304, i64::MAX]);
    let got: Vec<i64> = strings(load("ziplist_with_integers.rdb").value("ziplist_with_integers"))
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn zipmap_with_big_values() {
    let d = load("zipmap_with_big_values.rdb");
    let h = d.value("zipmap_with_big_values").as_object().unwrap();
    let mut lens: Vec<usize> = h.values().map(|v| v.as_str().unwrap().len()).collect();
    lens.sort();
    assert_eq!(lens, [253, 254, 255, 300, 20000]);
}
