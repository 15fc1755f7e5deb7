//! LZF decompression, as used for RDB strings (encoding 0xC3).
//!
//! The format is a sequence of control bytes: `ctrl < 32` copies `ctrl + 1` literal bytes;
//! otherwise it is a back-reference of `(ctrl >> 5) + 2` bytes (plus an extra length byte
//! when `ctrl >> 5 == 7`) starting `((ctrl & 0x1f) << 8) + next + 1` bytes back in the
//! output. Back-references may overlap the bytes they produce.

/// Decompresses `input` into a new vector that must come out exactly `expected_len`
/// bytes long. Every read is bounds-checked; the error says what was wrong.
#[cfg(test)]
pub fn decompress(input: &[u8], expected_len: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    decompress_into(input, expected_len, &mut out)?;
    Ok(out)
}

/// Decompresses `input`, appending exactly `expected_len` bytes to `out` (back-references
/// reach only into this string's own output, never into what `out` held before).
///
/// LZF expands at most ~88x (a 3-byte back-reference yields 264 bytes), so a declared
/// length beyond that is refused before anything is allocated: the allocation is bounded
/// by the input actually received, not by what the header claims.
pub fn decompress_into(input: &[u8], expected_len: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if expected_len > input.len().saturating_mul(MAX_RATIO).saturating_add(MAX_RATIO) {
        return Err(format!("{} compressed bytes cannot expand to the declared {expected_len}", input.len()));
    }
    let base = out.len();
    out.resize(base + expected_len, 0);
    let dst = &mut out[base..];
    let (mut i, mut o) = (0usize, 0usize);
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input
                .get(i..i + run)
                .ok_or_else(|| format!("literal run of {run} bytes at input byte {} runs past the end", i - 1))?;
            dst.get_mut(o..o + run)
                .ok_or_else(|| format!("output exceeds the declared {expected_len} bytes"))?
                .copy_from_slice(lit);
            i += run;
            o += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(i).ok_or("back-reference length byte missing at the end")? as usize;
                i += 1;
            }
            len += 2;
            let low = *input.get(i).ok_or("back-reference offset byte missing at the end")? as usize;
            i += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            if back > o {
                return Err(format!("back-reference {back} bytes back, but only {o} bytes were produced"));
            }
            if o + len > expected_len {
                return Err(format!("output exceeds the declared {expected_len} bytes"));
            }
            let start = o - back;
            if back >= len {
                dst.copy_within(start..start + len, o);
            } else if back == 1 {
                // A run of one byte (padding, repeated characters).
                let b = dst[start];
                dst[o..o + len].fill(b);
            } else {
                // Overlapping copy: each byte may be one this copy just produced.
                for k in 0..len {
                    dst[o + k] = dst[start + k];
                }
            }
            o += len;
        }
    }
    if o != expected_len {
        out.truncate(base + o);
        return Err(format!("decompressed to {o} bytes, declared {expected_len}"));
    }
    Ok(())
}

/// Largest expansion LZF can achieve, rounded up.
const MAX_RATIO: usize = 90;

/// Compresses with the LZF format (test helper and fixture builder: a simple greedy
/// matcher, not the fastest, but any valid LZF stream is what the decoder must accept).
#[cfg(test)]
pub fn compress(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut lit: Vec<u8> = Vec::new();
    let flush = |out: &mut Vec<u8>, lit: &mut Vec<u8>| {
        for part in lit.chunks(32) {
            out.push((part.len() - 1) as u8);
            out.extend_from_slice(part);
        }
        lit.clear();
    };
    let mut i = 0;
    while i < input.len() {
        let mut best = (0usize, 0usize); // (len, back)
        let window = i.saturating_sub(8192);
        for start in window..i {
            let mut l = 0;
            while i + l < input.len() && l < 264 && input[start + l] == input[i + l] {
                l += 1;
            }
            if l > best.0 {
                best = (l, i - start);
            }
        }
        if best.0 >= 3 {
            flush(&mut out, &mut lit);
            let (len, back) = best;
            let off = back - 1;
            let l = len - 2;
            if l < 7 {
                out.push(((l << 5) | (off >> 8)) as u8);
            } else {
                out.push(((7 << 5) | (off >> 8)) as u8);
                out.push((l - 7) as u8);
            }
            out.push((off & 0xff) as u8);
            i += len;
        } else {
            lit.push(input[i]);
            i += 1;
        }
    }
    flush(&mut out, &mut lit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn literal_and_overlapping_reference() {
        // "a" literal, then a back-reference of 9 bytes starting 1 back: "aaaaaaaaaa".
        let data = [0x00, b'a', (7 << 5), 0x00, 0x00];
        assert_eq!(decompress(&data, 10).unwrap(), b"aaaaaaaaaa");
    }

    #[test]
    fn appends_without_reaching_back_into_earlier_output() {
        let mut out = b"xyz".to_vec();
        decompress_into(&[0x00, b'a', 0x20, 0x00], 4, &mut out).unwrap();
        assert_eq!(out, b"xyzaaaa");
        // A back-reference into "xyz" is refused.
        let mut out = b"xyz".to_vec();
        assert!(decompress_into(&[0x20, 0x01], 3, &mut out).is_err());
    }

    #[test]
    fn rejects_bad_streams() {
        assert!(decompress(&[0x05, b'a'], 6).unwrap_err().contains("runs past the end"));
        assert!(decompress(&[0x20, 0x00], 3).unwrap_err().contains("only 0 bytes"));
        assert!(decompress(&[0x00, b'a'], 2).unwrap_err().contains("declared 2"));
        assert!(decompress(&[0x00, b'a'], 1 << 30).unwrap_err().contains("cannot expand"));
        assert!(decompress(&[0x01, b'a', b'b'], 1).unwrap_err().contains("exceeds"));
        assert!(decompress(&[0xe0], 10).unwrap_err().contains("missing"));
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000)) {
            let c = compress(&data);
            prop_assert_eq!(decompress(&c, data.len()).unwrap(), data);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..5000) {
            let _ = decompress(&data, n);
        }
    }
}
