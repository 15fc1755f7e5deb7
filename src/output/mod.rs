//! The `decode` command's output formats. Each turns the decoder's [`Record`] stream
//! into bytes as it goes, holding no more than the current key's bookkeeping.
//!
//! - [`jsonl`]: one JSON object per key (and per aux field, function, ...).
//! - [`commands`]: RESP commands that recreate the dataset, for `redis-cli --pipe`.
//! - [`summary`]: counts per db and type, encodings, the biggest keys.
//!
//! [`Record`]: crate::rdb::Record

pub mod commands;
pub mod jsonl;
pub mod summary;

use std::io::{self, Write};

use base64::Engine;

/// Bytes the writers collect before writing to their output.
const FLUSH_AT: usize = 64 * 1024;

/// Moves what a writer has collected in `buf` to `out` once there is enough of it (or
/// always, with `force`, which also flushes `out`).
fn spill<W: Write>(out: &mut W, buf: &mut Vec<u8>, force: bool) -> io::Result<()> {
    if force || buf.len() >= FLUSH_AT {
        out.write_all(buf)?;
        buf.clear();
    }
    if force {
        out.flush()?;
    }
    Ok(())
}

/// Appends a byte string in the logical-dump JSON form: the JSON string itself when the
/// bytes are UTF-8 and do not start with `base64:`, otherwise `"base64:"` + standard
/// padded base64.
pub fn write_json_bytes(out: &mut Vec<u8>, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) if !s.starts_with("base64:") => write_json_str(out, s),
        _ => write_json_base64(out, b),
    }
}

/// Appends `"base64:<base64 of b>"`.
pub fn write_json_base64(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b"\"base64:");
    let start = out.len();
    let n = base64::encoded_len(b.len(), true).unwrap_or(0);
    out.resize(start + n, 0);
    let written = base64::engine::general_purpose::STANDARD.encode_slice(b, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

/// For each byte: 0 if it goes into a JSON string as is, `u` for a `\u00XX` escape,
/// otherwise the character that follows the backslash.
static ESCAPES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends a JSON string literal, escaping quotes, backslashes and control characters.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPES[b as usize];
        if e == 0 {
            continue;
        }
        if run < i {
            out.extend_from_slice(&bytes[run..i]);
        }
        if e == b'u' {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// A function library's engine and name, from the first line of its code
/// (`#!lua name=mylib`). The engine is upper-cased, as `FUNCTION LIST` reports it.
pub fn function_header(code: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let line = code.split(|&b| b == b'\n').next()?;
    let rest = line.strip_prefix(b"#!")?;
    let mut parts = rest.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let engine = parts.next()?.to_ascii_uppercase();
    let name = parts.find_map(|p| p.strip_prefix(b"name="))?;
    Some((engine, name))
}

/// The code Redis 7.0 builds from a pre-release function record (`#!%s name=%s\n%s`
/// of engine, name and body, in `rdbFunctionLoad`).
pub fn pre_ga_library_code(name: &[u8], engine: &[u8], code: &[u8]) -> Vec<u8> {
    let mut out = b"#!".to_vec();
    out.extend_from_slice(engine);
    out.extend_from_slice(b" name=");
    out.extend_from_slice(name);
    out.push(b'\n');
    out.extend_from_slice(code);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(b: &[u8]) -> String {
        let mut out = Vec::new();
        write_json_bytes(&mut out, b);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn byte_strings() {
        assert_eq!(json(b"plain"), r#""plain""#);
        assert_eq!(json("h\u{e9}\"\\\n\x01".as_bytes()), "\"h\u{e9}\\\"\\\\\\n\\u0001\"");
        assert_eq!(json(b"key:\xff\xfe"), r#""base64:a2V5Ov/+""#);
        assert_eq!(json(b"base64:x"), r#""base64:YmFzZTY0Ong=""#);
        assert_eq!(json(b""), r#""""#);
    }

    #[test]
    fn function_headers() {
        let (engine, name) = function_header(b"#!lua name=mylib\nredis.register_function(...)").unwrap();
        assert_eq!((&engine[..], name), (&b"LUA"[..], &b"mylib"[..]));
        assert!(function_header(b"return 1").is_none());
    }
}
