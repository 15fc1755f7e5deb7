//! `redis://` and `rediss://` URLs naming a server, with the password kept out of every
//! message.

use std::fmt;

/// A password. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The password itself, for the AUTH command only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a server is and how to log in: parsed from
/// `redis://[[user]:password@]host[:port][/db]` (`rediss://` for TLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Connect with TLS (`rediss://`).
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port (default 6379).
    pub port: u16,
    /// ACL user (Redis 6.0+), if any.
    pub user: Option<String>,
    /// Password, if any.
    pub password: Option<Secret>,
    /// A database number given as the URL path, if any.
    pub db: Option<u32>,
}

/// A URL that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid server URL {shown:?}: {reason} (expected redis://[[user]:password@]host[:port][/db], or rediss:// for TLS)")]
pub struct UrlError {
    /// The URL with any password replaced by `***`.
    pub shown: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Endpoint {
    /// Parses a URL. A bare `host[:port]` is accepted as `redis://host[:port]`.
    pub fn parse(url: &str) -> Result<Endpoint, UrlError> {
        let err = |reason: &str| UrlError { shown: redact(url), reason: reason.to_string() };
        let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "rediss://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(url, "redis://") {
            (false, r)
        } else if url.contains("://") {
            return Err(err("unknown scheme"));
        } else {
            (false, url)
        };
        // The user info is everything before the last `@` (what `redact` hides). Unescaped,
        // `/`, `?` and `#` would make it ambiguous where the host starts, so they are
        // refused there rather than guessed at (and never quoted: they may be a password's).
        let (userinfo, rest) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        if userinfo.is_some_and(|u| u.contains(['/', '?', '#'])) {
            return Err(err(
                "a '/', '?' or '#' before the '@': percent-encode it in a user name or password (%2F, %3F, %23)",
            ));
        }
        let (hostport, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.find(':') {
                    Some(i) => (&ui[..i], Some(&ui[i + 1..])),
                    None => (ui, None),
                };
                let u = percent_decode(u).ok_or_else(|| err("bad %-escape in the user name"))?;
                let p = match p {
                    Some(p) => Some(percent_decode(p).ok_or_else(|| err("bad %-escape in the password"))?),
                    None => None,
                };
                match p {
                    // `redis://secret@host` is the usual shorthand for a password alone.
                    None if !u.is_empty() => (None, Some(Secret(u))),
                    None => (None, None),
                    Some(p) => ((!u.is_empty()).then_some(u), (!p.is_empty()).then_some(Secret(p))),
                }
            }
        };
        let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| err("unclosed [ in an IPv6 address"))?;
            let host = &r[..end];
            let after = &r[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(err("unexpected text after the IPv6 address")),
            };
            (host.to_string(), port)
        } else {
            match hostport.rfind(':') {
                Some(i) => (hostport[..i].to_string(), Some(&hostport[i + 1..])),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(err("no host"));
        }
        let port = match port {
            None => 6379,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(err("the port must be a number from 1 to 65535")),
            },
        };
        let db = db_of(tail).map_err(|reason| err(&reason))?;
        Ok(Endpoint { tls, host, port, user, password, db })
    }

    /// `host:port` (IPv6 in brackets), for connecting and for messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Endpoint {
    /// The URL with the password shown as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.tls { "rediss://" } else { "redis://" })?;
        match (&self.user, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:***@")?,
            (Some(u), None) => write!(f, "{u}@")?,
            (None, Some(_)) => f.write_str(":***@")?,
            (None, None) => {}
        }
        f.write_str(&self.address())?;
        if let Some(db) = self.db {
            write!(f, "/{db}")?;
        }
        Ok(())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// The database number in what follows the host and port: nothing, `/` or `/N`. Any
/// other path, a query or a fragment is refused, naming it (a query's values masked),
/// never ignored.
fn db_of(tail: &str) -> Result<Option<u32>, String> {
    let (tail, fragment) = tail.split_at(tail.find('#').unwrap_or(tail.len()));
    let (path, query) = tail.split_at(tail.find('?').unwrap_or(tail.len()));
    if !query.is_empty() {
        return Err(format!(
            "the query {:?} is not understood (options are command-line flags, the password goes before the @)",
            mask_query(query)
        ));
    }
    if !fragment.is_empty() {
        return Err(format!("the fragment {:?} is not understood", mask_fragment(fragment)));
    }
    let n = match path.strip_prefix('/') {
        None | Some("") => return Ok(None),
        Some(n) => n,
    };
    if n.contains('/') {
        return Err(format!("the path {path:?} has more than one segment (only /N, a database number, is understood)"));
    }
    if !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the path {path:?} is not a database number (/N)"));
    }
    n.parse::<u32>().map(Some).map_err(|_| format!("the database number {n} is too large"))
}

/// `?a=1&b=2` as `?a=***&b=***`: a query may carry a password.
fn mask_query(query: &str) -> String {
    let body = query.strip_prefix('?').unwrap_or(query);
    let parts: Vec<String> = body
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) => format!("{k}=***"),
            None if p.is_empty() => String::new(),
            None => "***".to_string(),
        })
        .collect();
    format!("?{}", parts.join("&"))
}

/// A fragment is shown as `#***`: nothing says what it holds.
fn mask_fragment(fragment: &str) -> &'static str {
    if fragment.len() > 1 {
        "#***"
    } else {
        "#"
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `url` with everything up to its last `@` replaced by `***` (after the scheme, and
/// keeping a user name), so that a password never reaches a message, even when it
/// holds a `/` or the URL is malformed; a query's values and a fragment are masked too
/// (`?password=...` is a form some clients take).
pub fn redact(url: &str) -> String {
    let (head, rest) = match url.rfind('@') {
        None => (String::new(), url),
        Some(at) => {
            let (scheme, userinfo) = match url[..at].find("://") {
                Some(i) => (&url[..i + 3], &url[i + 3..at]),
                None => ("", &url[..at]),
            };
            let user = match userinfo.find(':') {
                Some(i) if !userinfo[..i].contains('/') => &userinfo[..i],
                _ => "",
            };
            (format!("{scheme}{user}:***@"), &url[at + 1..])
        }
    };
    let (rest, fragment) = rest.split_at(rest.find('#').unwrap_or(rest.len()));
    let (rest, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let query = if query.is_empty() { String::new() } else { mask_query(query) };
    let fragment = if fragment.is_empty() { "" } else { mask_fragment(fragment) };
    format!("{head}{rest}{query}{fragment}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let e = Endpoint::parse("redis://127.0.0.1:6380").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port, e.user.as_ref(), e.password.as_ref()), (false, "127.0.0.1", 6380, None, None));
        let e = Endpoint::parse("rediss://app:p%40ss@cache.example.com/3").unwrap();
        assert!(e.tls);
        assert_eq!(e.user.as_deref(), Some("app"));
        assert_eq!(e.password.as_ref().unwrap().expose(), "p@ss");
        assert_eq!((e.host.as_str(), e.port, e.db), ("cache.example.com", 6379, Some(3)));
        let e = Endpoint::parse("redis://:secret@h").unwrap();
        assert_eq!((e.user.as_ref(), e.password.as_ref().map(Secret::expose)), (None, Some("secret")));
        let e = Endpoint::parse("redis://secret@h").unwrap();
        assert_eq!(e.password.as_ref().map(Secret::expose), Some("secret"));
        let e = Endpoint::parse("redis://[::1]:7000").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.address()), ("::1", 7000, "[::1]:7000".to_string()));
        let e = Endpoint::parse("localhost:6390").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("localhost", 6390));
        assert!(Endpoint::parse("REDIS://h").is_ok());
    }

    #[test]
    fn rejects_bad_urls_without_showing_the_password() {
        for bad in ["http://h", "redis://", "redis://h:0", "redis://h:99999", "redis://u:pw@h:x", "redis://h/db", "redis://[::1"] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
        let e = Endpoint::parse("redis://u:hunter2@h:x").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn the_path_is_a_database_number_or_nothing() {
        let db = |url: &str| Endpoint::parse(url).unwrap().db;
        assert_eq!(db("redis://h:1"), None);
        assert_eq!(db("redis://h:1/"), None, "a trailing / alone names no db");
        assert_eq!(db("redis://h:1/0"), Some(0));
        assert_eq!(db("redis://h/15"), Some(15));
        assert_eq!(db("h:7000/3"), Some(3));
        assert_eq!(db("redis://[::1]:7000/4"), Some(4));
        assert_eq!(db("redis://u:p%2Fw@h/2"), Some(2));
        let e = Endpoint::parse("redis://u:p%2Fw@h/2").unwrap();
        assert_eq!(e.password.as_ref().map(Secret::expose), Some("p/w"));
    }

    #[test]
    fn what_is_not_understood_is_refused_by_name() {
        let reason = |url: &str| Endpoint::parse(url).unwrap_err().reason;
        for (url, says) in [
            ("redis://h/db", "the path \"/db\" is not a database number"),
            ("redis://h/+1", "the path \"/+1\" is not a database number"),
            ("redis://h/-1", "the path \"/-1\" is not a database number"),
            ("redis://h/%31", "the path \"/%31\" is not a database number"),
            ("redis://h/ 1", "is not a database number"),
            ("redis://h/1/2", "the path \"/1/2\" has more than one segment"),
            ("redis://h/1/", "the path \"/1/\" has more than one segment"),
            ("redis://h//", "more than one segment"),
            ("redis://h/4294967296", "the database number 4294967296 is too large"),
            ("redis://h:1/2?timeout=5", "the query \"?timeout=***\" is not understood"),
            ("redis://h?db=2&ssl", "the query \"?db=***&***\" is not understood"),
            ("redis://h/?", "the query \"?\" is not understood"),
            ("redis://h/3#x", "the fragment \"#***\" is not understood"),
            ("redis://h#", "the fragment \"#\" is not understood"),
            ("redis://h?a=1#b", "the query \"?a=***\""),
            ("redis://:pa/ss@h", "a '/', '?' or '#' before the '@'"),
            ("redis://:pa?ss@h", "a '/', '?' or '#' before the '@'"),
            ("redis://:pa#ss@h", "a '/', '?' or '#' before the '@'"),
            ("redis://h/0?x=a@b", "a '/', '?' or '#' before the '@'"),
        ] {
            let r = reason(url);
            assert!(r.contains(says), "{url}: {r}");
        }
    }

    #[test]
    fn refusals_never_show_a_password() {
        for url in [
            "redis://u:hunter2@h/?password=hunter2",
            "redis://h?password=hunter2",
            "redis://h?hunter2",
            "redis://h/1#hunter2",
            "redis://:hunter2/x@h",
            "redis://:hun#ter2@h",
            "redis://:hunter2@h/x/y",
        ] {
            let e = Endpoint::parse(url).unwrap_err();
            assert!(!e.to_string().contains("hunter2") && !e.to_string().contains("ter2"), "{url}: {e}");
            assert!(!redact(url).contains("ter2"), "{url}: {}", redact(url));
        }
        assert_eq!(redact("redis://h:1/2?a=1&b"), "redis://h:1/2?a=***&***");
        assert_eq!(redact("redis://u:p@h/2#f"), "redis://u:***@h/2#***");
    }

    #[test]
    fn display_hides_the_password() {
        let e = Endpoint::parse("rediss://app:hunter2@h:1/2").unwrap();
        assert_eq!(e.to_string(), "rediss://app:***@h:1/2");
        assert!(!format!("{e:?}").contains("hunter2"));
        assert_eq!(redact("redis://a:b@c:1"), "redis://a:***@c:1");
        assert_eq!(redact("redis://c:1"), "redis://c:1");
        assert_eq!(redact("redis://u:pa/ss@h"), "redis://u:***@h");
        assert!(!redact("redis:/u:pw@h").contains("pw"));
        let e = Endpoint::parse("redis://u:pa/ss@h:x").unwrap_err();
        assert!(!e.to_string().contains("pa/ss"), "{e}");
    }
}
