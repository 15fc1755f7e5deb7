//! `--match` / `--exclude`: which keys are copied, for snapshot keys and for the keys
//! of each stream command (found by the command's key positions).

/// Glob patterns, Redis `KEYS`/`SCAN MATCH` style: `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// A key is copied if it matches one of these (or there are none)...
    pub include: Vec<Vec<u8>>,
    /// ... and none of these.
    pub exclude: Vec<Vec<u8>>,
}

impl KeyFilter {
    /// No patterns: every key is copied.
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether `key` is copied.
    pub fn admits(&self, key: &[u8]) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| glob_match(p, key)))
            && !self.exclude.iter().any(|p| glob_match(p, key))
    }
}

/// What a filter says about a stream command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// All its keys are copied (or the filter is empty).
    Apply,
    /// None of its keys is copied.
    Skip,
    /// Some of its keys are copied and some are not: it is applied whole (leaving it
    /// out would leave the copied keys wrong).
    Mixed,
    /// It changes keys it does not name (FLUSHDB, FLUSHALL, SWAPDB): with a filter,
    /// which destination keys it should touch cannot be told.
    Unfilterable,
}

/// Where a command's keys are: (first, last, step) over the arguments, `last`
/// negative counting from the end; or after a `numkeys` argument.
enum Spec {
    Range(usize, isize, usize),
    /// Keys are `numkeys` arguments after the one at this index (EVAL, FCALL).
    NumKeys(usize),
    /// A destination key at 1, then `numkeys` at 2 and the keys (ZUNIONSTORE...).
    DestNumKeys,
    None,
    AllKeys,
}

fn spec(name: &[u8]) -> Spec {
    let n = name.to_ascii_uppercase();
    match &n[..] {
        b"SELECT" | b"PING" | b"MULTI" | b"EXEC" | b"DISCARD" | b"FUNCTION" | b"SCRIPT" | b"PUBLISH"
        | b"SPUBLISH" | b"REPLCONF" => Spec::None,
        b"FLUSHDB" | b"FLUSHALL" | b"SWAPDB" => Spec::AllKeys,
        b"MSET" | b"MSETNX" => Spec::Range(1, -1, 2),
        b"DEL" | b"UNLINK" | b"TOUCH" | b"PFMERGE" | b"SINTERSTORE" | b"SUNIONSTORE" | b"SDIFFSTORE" | b"WATCH" => {
            Spec::Range(1, -1, 1)
        }
        b"RENAME" | b"RENAMENX" | b"RPOPLPUSH" | b"LMOVE" | b"SMOVE" | b"COPY" | b"GEOSEARCHSTORE"
        | b"ZRANGESTORE" => Spec::Range(1, 2, 1),
        b"BITOP" => Spec::Range(2, -1, 1),
        b"XGROUP" => Spec::Range(2, 2, 1),
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => Spec::NumKeys(2),
        b"ZUNIONSTORE" | b"ZINTERSTORE" | b"ZDIFFSTORE" => Spec::DestNumKeys,
        _ => Spec::Range(1, 1, 1),
    }
}

/// The filter's verdict on one command (`args[0]` is its name).
pub fn verdict(filter: &KeyFilter, args: &[&[u8]]) -> Verdict {
    if filter.is_empty() {
        return Verdict::Apply;
    }
    let Some(name) = args.first() else { return Verdict::Apply };
    let positions: Vec<usize> = match spec(name) {
        Spec::None => return Verdict::Apply,
        Spec::AllKeys => return Verdict::Unfilterable,
        Spec::Range(first, last, step) => {
            let last = if last < 0 { args.len() as isize + last } else { last };
            if last < first as isize {
                return Verdict::Apply;
            }
            (first..=last as usize).step_by(step).filter(|&i| i < args.len()).collect()
        }
        Spec::NumKeys(at) => {
            let n = args.get(at).and_then(|a| std::str::from_utf8(a).ok()).and_then(|a| a.parse::<usize>().ok()).unwrap_or(0);
            (at + 1..at + 1 + n).filter(|&i| i < args.len()).collect()
        }
        Spec::DestNumKeys => {
            let n = args.get(2).and_then(|a| std::str::from_utf8(a).ok()).and_then(|a| a.parse::<usize>().ok()).unwrap_or(0);
            std::iter::once(1).chain(3..3 + n).filter(|&i| i < args.len()).collect()
        }
    };
    if positions.is_empty() {
        return Verdict::Apply;
    }
    let admitted = positions.iter().filter(|&&i| filter.admits(args[i])).count();
    match admitted {
        0 => Verdict::Skip,
        n if n == positions.len() => Verdict::Apply,
        _ => Verdict::Mixed,
    }
}

/// Redis-style glob matching of `s` against `pattern`.
pub fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    // Iterative, backtracking only to the last `*`: linear in practice, no recursion.
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, i));
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(pattern, p, s[i]) {
                        if matched {
                            p = next;
                            i += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == s[i] {
                        p += 2;
                        i += 1;
                        continue;
                    }
                }
                c => {
                    if c == s[i] {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at `pattern[p]`: whether `c` is in it, and where the pattern goes on.
/// `None` for an unterminated class (then `[` matches nothing).
fn class(pattern: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = p + 1;
    let negate = pattern.get(j) == Some(&b'^');
    if negate {
        j += 1;
    }
    let mut matched = false;
    while j < pattern.len() && pattern[j] != b']' {
        if pattern[j] == b'\\' && j + 1 < pattern.len() {
            matched |= pattern[j + 1] == c;
            j += 2;
        } else if j + 2 < pattern.len() && pattern[j + 1] == b'-' && pattern[j + 2] != b']' {
            let (a, b) = (pattern[j].min(pattern[j + 2]), pattern[j].max(pattern[j + 2]));
            matched |= (a..=b).contains(&c);
            j += 3;
        } else {
            matched |= pattern[j] == c;
            j += 1;
        }
    }
    if j >= pattern.len() {
        return None;
    }
    Some((matched != negate, j + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, s, want) in [
            ("*", "", true),
            ("*", "anything", true),
            ("user:*", "user:1", true),
            ("user:*", "session:1", false),
            ("*:1", "user:1", true),
            ("u?er", "user", true),
            ("u?er", "usr", false),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-c]llo", "hbllo", true),
            ("h[a-c]llo", "hdllo", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c*", "xxaxxcxxbxx", false),
            ("a*", "a", true),
            ("", "", true),
            ("", "a", false),
            ("[abc", "a", false),
        ] {
            assert_eq!(glob_match(p.as_bytes(), s.as_bytes()), want, "{p:?} ~ {s:?}");
        }
        // No blow-up on many stars.
        let p = "*a".repeat(30);
        assert!(!glob_match(p.as_bytes(), "a".repeat(29).as_bytes()));
    }

    #[test]
    fn verdicts() {
        let f = KeyFilter { include: vec![b"user:*".to_vec()], exclude: vec![b"user:tmp:*".to_vec()] };
        assert!(f.admits(b"user:1") && !f.admits(b"user:tmp:1") && !f.admits(b"other"));
        let v = |args: &[&str]| verdict(&f, &args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
        assert_eq!(v(&["SET", "user:1", "x"]), Verdict::Apply);
        assert_eq!(v(&["SET", "other", "x"]), Verdict::Skip);
        assert_eq!(v(&["MSET", "user:1", "a", "user:2", "b"]), Verdict::Apply);
        assert_eq!(v(&["MSET", "user:1", "a", "other", "b"]), Verdict::Mixed);
        assert_eq!(v(&["DEL", "other", "user:tmp:1"]), Verdict::Skip);
        assert_eq!(v(&["RENAME", "user:1", "other"]), Verdict::Mixed);
        assert_eq!(v(&["EVAL", "return 1", "1", "user:1", "arg"]), Verdict::Apply);
        assert_eq!(v(&["EVAL", "return 1", "0", "user:1"]), Verdict::Apply, "no keys: applied");
        assert_eq!(v(&["ZUNIONSTORE", "other", "2", "user:1", "user:2"]), Verdict::Mixed);
        assert_eq!(v(&["XGROUP", "CREATE", "user:s", "g", "0"]), Verdict::Apply);
        assert_eq!(v(&["FLUSHDB"]), Verdict::Unfilterable);
        assert_eq!(v(&["PING"]), Verdict::Apply);
        assert_eq!(verdict(&KeyFilter::default(), &[b"FLUSHDB"]), Verdict::Apply);
    }
}
