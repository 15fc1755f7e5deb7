//! The logical content of a dataset, from `decode --format jsonl` output or from an
//! `expected.json` (testdata/tools/dump_expected.py), normalized so that the two can be
//! compared: sets sorted by raw bytes, zsets by score then member, stream groups and
//! consumers by name, pending entries by id, scores as exact doubles.
#![allow(dead_code)]

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Value};

/// Keys per db, each `{"type", "value", "expire_at_ms", ["field_expire_at_ms"]}`; and the
/// function libraries as (name, engine, code), `None` when the source has no functions.
#[derive(Debug, Default, PartialEq)]
pub struct Logical {
    pub dbs: BTreeMap<u64, BTreeMap<String, Value>>,
    pub functions: Option<Vec<(String, String, String)>>,
    pub expire_precision_ms: i64,
}

/// The raw bytes behind a logical-dump string.
pub fn raw(s: &str) -> Vec<u8> {
    match s.strip_prefix("base64:") {
        Some(b) => base64::engine::general_purpose::STANDARD.decode(b).expect("valid base64"),
        None => s.as_bytes().to_vec(),
    }
}

fn score(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        Value::String(s) if s == "nan" => f64::NAN,
        other => panic!("bad score {other}"),
    }
}

fn id_key(v: &Value) -> (u64, u64) {
    let s = v.as_str().unwrap();
    let (a, b) = s.split_once('-').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

fn str_key(v: &Value) -> Vec<u8> {
    raw(v.as_str().unwrap())
}

/// Normalizes one key's value so that equal datasets give equal JSON.
fn normalize(kind: &str, value: &Value) -> Value {
    match kind {
        "set" => {
            let mut v = value.as_array().unwrap().clone();
            v.sort_by_key(str_key);
            Value::Array(v)
        }
        "zset" => {
            let mut v: Vec<(f64, Vec<u8>, Value)> = value
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (score(&p[1]), str_key(&p[0]), p[0].clone()))
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            // Scores as the exact double's debug text: 1 and 1.0 are the same score.
            Value::Array(v.into_iter().map(|(s, _, m)| json!([m, format!("{s:?}")])).collect())
        }
        "stream" => {
            let mut s = value.clone();
            let groups = s["groups"].as_array_mut().unwrap();
            for g in groups.iter_mut() {
                g["consumers"].as_array_mut().unwrap().sort_by_key(|c| str_key(&c["name"]));
                g["pending"].as_array_mut().unwrap().sort_by_key(|p| id_key(&p[0]));
            }
            groups.sort_by_key(|g| str_key(&g["name"]));
            s
        }
        _ => value.clone(),
    }
}

/// Module types whose values `expected.json` gives in the module's own terms (VEMB
/// vectors, `JSON.GET` text) rather than as the stored bytes, which the decoder passes
/// through without interpreting: both sides compare them as this marker (type, expiry
/// and presence only). Their values are compared on live servers instead (tests that
/// restore the fixtures into Redis 8).
const INTERPRETED_MODULES: [&str; 2] = ["vectorset", "ReJSON-RL"];

/// A decoded key in the terms of `expected.json`: a module value's type is its module
/// type name and its value the DUMP payload less its footer (type byte 7, then what
/// the decoder gives); an IDMP stream's producer map (only in the RDB) becomes the
/// counts XINFO shows, checked against the counts the RDB also carries.
fn as_expected(kind: &str, value: &Value) -> (String, Value) {
    match kind {
        "module" => {
            let name = value["module"].as_str().unwrap().to_string();
            if INTERPRETED_MODULES.contains(&name.as_str()) {
                return (name.clone(), json!({ "not_compared": name }));
            }
            let mut bytes = vec![7u8];
            bytes.extend(raw(value["payload"].as_str().unwrap()));
            (name, json!(format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(bytes))))
        }
        "stream" if value.get("idmp").is_some_and(|i| i.get("producers").is_some()) => {
            let mut v = value.clone();
            let idmp = v["idmp"].as_object_mut().unwrap();
            let producers = idmp.remove("producers").unwrap();
            let producers = producers.as_array().unwrap();
            let iids: usize = producers.iter().map(|p| p["iids"].as_array().unwrap().len()).sum();
            assert_eq!(idmp["pids_tracked"], json!(producers.len()), "the producers the RDB counts and lists: {value}");
            assert_eq!(idmp["iids_tracked"], json!(iids), "the IIDs the RDB counts and lists: {value}");
            (kind.to_string(), v)
        }
        _ => (kind.to_string(), value.clone()),
    }
}

fn entry(kind: &str, value: &Value, expire: &Value, field_expire: Option<&Value>) -> Value {
    let mut e = json!({"type": kind, "value": normalize(kind, value), "expire_at_ms": expire});
    if let Some(f) = field_expire {
        e["field_expire_at_ms"] = f.clone();
    }
    e
}

impl Logical {
    /// From `decode --format jsonl` output.
    pub fn from_jsonl(text: &str) -> Logical {
        let mut out = Logical::default();
        let mut functions = Vec::new();
        for line in text.lines() {
            let r: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
            if let Some(key) = r.get("key") {
                let db = r["db"].as_u64().unwrap();
                let (kind, value) = as_expected(r["type"].as_str().unwrap(), &r["value"]);
                let e = entry(&kind, &value, &r["expire_at_ms"], r.get("field_expire_at_ms"));
                let prev = out.dbs.entry(db).or_default().insert(key.as_str().unwrap().to_string(), e);
                assert!(prev.is_none(), "key {key} twice in db {db}");
            } else if let Some(name) = r.get("function") {
                functions.push((
                    name.as_str().unwrap().to_string(),
                    r["engine"].as_str().unwrap().to_string(),
                    r["code"].as_str().unwrap().to_string(),
                ));
            }
        }
        functions.sort();
        out.functions = (!functions.is_empty()).then_some(functions);
        out
    }

    /// From an `expected.json` logical dump.
    pub fn from_expected(text: &str) -> Logical {
        let v: Value = serde_json::from_str(text).unwrap();
        let mut out = Logical { expire_precision_ms: v["expire_precision_ms"].as_i64().unwrap_or(0), ..Default::default() };
        for (db, keys) in v["dbs"].as_object().unwrap() {
            let db: u64 = db.parse().unwrap();
            for (key, k) in keys.as_object().unwrap() {
                let kind = k["type"].as_str().unwrap();
                assert!(k.get("unsupported").is_none(), "expected.json has an unsupported key {key}");
                let e = entry(kind, &k["value"], &k["expire_at_ms"], k.get("field_expire_at_ms"));
                out.dbs.entry(db).or_default().insert(key.clone(), e);
            }
        }
        if let Some(libs) = v["functions"].as_array() {
            let mut f: Vec<(String, String, String)> = libs
                .iter()
                .map(|l| {
                    (
                        l["library_name"].as_str().unwrap().to_string(),
                        l["engine"].as_str().unwrap().to_string(),
                        l["code"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            f.sort();
            out.functions = (!f.is_empty()).then_some(f);
        }
        out
    }

    /// Replaces the values of the module types the decoder does not interpret (see
    /// [`INTERPRETED_MODULES`]) with the marker decoded output has for them, to compare
    /// a server's logical dump with a decoded file.
    pub fn mask_interpreted_modules(&mut self) {
        for k in self.dbs.values_mut().flat_map(|keys| keys.values_mut()) {
            let kind = k["type"].as_str().unwrap_or("").to_string();
            if INTERPRETED_MODULES.contains(&kind.as_str()) {
                k["value"] = json!({ "not_compared": kind });
            }
        }
    }

    /// Differences between `self` (expected) and `got`, as readable lines; expiries
    /// may differ by `tolerance_ms`.
    pub fn diff(&self, got: &Logical, tolerance_ms: i64) -> Vec<String> {
        let mut d = Vec::new();
        let dbs: std::collections::BTreeSet<u64> = self.dbs.keys().chain(got.dbs.keys()).copied().collect();
        let empty = BTreeMap::new();
        for db in dbs {
            let (a, b) = (self.dbs.get(&db).unwrap_or(&empty), got.dbs.get(&db).unwrap_or(&empty));
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                d.push(format!("db {db}: key {k:?} missing"));
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                d.push(format!("db {db}: unexpected key {k:?}"));
            }
            for (k, x) in a {
                let Some(y) = b.get(k) else { continue };
                let (ex, ey) = (x["expire_at_ms"].as_i64(), y["expire_at_ms"].as_i64());
                let expire_ok = match (ex, ey) {
                    (None, None) => true,
                    (Some(p), Some(q)) => (p - q).abs() <= tolerance_ms,
                    _ => false,
                };
                if !expire_ok {
                    d.push(format!("db {db} key {k:?}: expire_at_ms {ex:?} != {ey:?}"));
                }
                for field in ["type", "value", "field_expire_at_ms"] {
                    if x.get(field) != y.get(field) {
                        d.push(format!(
                            "db {db} key {k:?}: {field} differs:\n  expected {}\n  got      {}",
                            short(x.get(field)),
                            short(y.get(field))
                        ));
                    }
                }
            }
        }
        if self.functions != got.functions {
            d.push(format!("functions differ: expected {:?}, got {:?}", self.functions, got.functions));
        }
        d
    }

    pub fn key_count(&self) -> usize {
        self.dbs.values().map(|k| k.len()).sum()
    }
}

fn short(v: Option<&Value>) -> String {
    let s = v.map_or("(absent)".to_string(), |v| v.to_string());
    if s.len() > 400 {
        format!("{}... ({} chars)", &s[..400], s.len())
    } else {
        s
    }
}

/// The types that are not module types.
const CORE_TYPES: [&str; 6] = ["string", "list", "set", "zset", "hash", "stream"];

/// Removes what a Redis destination of `version` with no module loaded cannot hold:
/// streams before 5.0, functions before 7.0, hashes with field TTLs before 7.4, vector
/// sets before 8.0, other module values always; and a stream's idempotent-producer
/// state (`idmp`) before 8.6. Returns how many keys went.
pub fn keep_what_fits(want: &mut Logical, version: (u32, u32)) -> usize {
    keep_what_fits_in(want, false, version)
}

/// [`keep_what_fits`] for Redis (`valkey` false) or Valkey of `version`: Valkey is
/// Redis 7.2 as far as types go, with hash field TTLs from 9.0, and no vector sets
/// nor IDMP state.
pub fn keep_what_fits_in(want: &mut Logical, valkey: bool, version: (u32, u32)) -> usize {
    let (version, field_ttls, vectorsets, idmp) = if valkey {
        ((7, 2), version >= (9, 0), false, false)
    } else {
        (version, version >= (7, 4), version >= (8, 0), version >= (8, 6))
    };
    let mut removed = 0;
    for keys in want.dbs.values_mut() {
        let before = keys.len();
        keys.retain(|_, k| {
            let kind = k["type"].as_str().unwrap();
            let stream = kind == "stream";
            let field_ttl = k.get("field_expire_at_ms").is_some_and(|f| !f.is_null());
            let module = !(CORE_TYPES.contains(&kind) || kind == "vectorset" && vectorsets);
            !(stream && version < (5, 0) || field_ttl && !field_ttls || module)
        });
        removed += before - keys.len();
        if !idmp {
            for k in keys.values_mut().filter(|k| k["type"] == "stream") {
                if let Some(v) = k["value"].as_object_mut() {
                    v.remove("idmp");
                }
            }
        }
    }
    want.dbs.retain(|_, keys| !keys.is_empty());
    if version < (7, 0) {
        want.functions = None;
        // Stream metadata that only 7.0+ keeps.
        for k in want.dbs.values_mut().flat_map(|keys| keys.values_mut()).filter(|k| k["type"] == "stream") {
            k["value"]["entries_added"] = Value::Null;
            k["value"]["max_deleted_id"] = Value::Null;
            for g in k["value"]["groups"].as_array_mut().unwrap() {
                g["entries_read"] = Value::Null;
            }
        }
    }
    removed
}

/// Takes every stream's idempotent-producer state (`idmp`) out.
pub fn drop_idmp(l: &mut Logical) {
    for k in l.dbs.values_mut().flat_map(|keys| keys.values_mut()).filter(|k| k["type"] == "stream") {
        k["value"].as_object_mut().unwrap().remove("idmp");
    }
}

/// Drops the pending entries whose message was deleted (XDEL): no command can
/// re-create them (every server version skips XCLAIM of an id not in the stream), so
/// a dataset written with commands never has them. Their consumers stay, with their
/// pending counts lowered.
pub fn drop_unclaimable_pending(want: &mut Logical) {
    for keys in want.dbs.values_mut() {
        for k in keys.values_mut() {
            if k["type"] != "stream" {
                continue;
            }
            let value = &mut k["value"];
            let live: std::collections::BTreeSet<String> =
                value["entries"].as_array().unwrap().iter().map(|e| e[0].as_str().unwrap().to_string()).collect();
            for g in value["groups"].as_array_mut().unwrap() {
                let pending = g["pending"].as_array_mut().unwrap();
                let (gone, kept): (Vec<Value>, Vec<Value>) =
                    pending.drain(..).partition(|p| !live.contains(p[0].as_str().unwrap()));
                *pending = kept;
                for p in gone {
                    if let Some(c) = g["consumers"].as_array_mut().unwrap().iter_mut().find(|c| c["name"] == p[1]) {
                        let n = c["pending"].as_i64().unwrap();
                        c["pending"] = Value::from(n - 1);
                    }
                }
            }
        }
    }
}

/// Stream metadata an older source version did not keep (`entries_added`,
/// `max_deleted_id`, a group's `entries_read`: null in its dump) is whatever the
/// destination computed: copied from `got` so that only what the source knew is
/// compared.
pub fn accept_unknown_stream_metadata(want: &mut Logical, got: &Logical) {
    for (db, keys) in want.dbs.iter_mut() {
        for (key, k) in keys.iter_mut() {
            if k["type"] != "stream" {
                continue;
            }
            let Some(theirs) = got.dbs.get(db).and_then(|g| g.get(key)) else { continue };
            if theirs["type"] != "stream" {
                continue;
            }
            for field in ["entries_added", "max_deleted_id"] {
                if k["value"][field].is_null() {
                    k["value"][field] = theirs["value"][field].clone();
                }
            }
            // A stream from before 8.6 has the default IDMP state (no producer) on 8.6+.
            let idmp = &theirs["value"]["idmp"];
            if k["value"].get("idmp").is_none() && idmp["pids_tracked"] == 0 && idmp["iids_added"] == 0 {
                k["value"]["idmp"] = idmp.clone();
            }
            let their_groups = theirs["value"]["groups"].as_array().cloned().unwrap_or_default();
            if let Some(groups) = k["value"]["groups"].as_array_mut() {
                for g in groups {
                    if g["entries_read"].is_null() {
                        if let Some(t) = their_groups.iter().find(|t| t["name"] == g["name"]) {
                            g["entries_read"] = t["entries_read"].clone();
                        }
                    }
                }
            }
        }
    }
}
