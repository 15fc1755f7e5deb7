//! Combinations of options that cannot work, refused when a subcommand starts: before
//! any server is contacted or any file written (exit 2, one line naming the options
//! and what to do instead). Each subcommand's arguments have a `check` that calls
//! these; the README lists what is refused.

/// A combination of options that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Refuses with `message`.
pub fn refuse(message: &str) -> Result<(), Refused> {
    Err(Refused(message.to_string()))
}

/// Refuses `flag` (given) when `needed` (the option it works through) is not.
pub fn needs(flag: &str, needed: &str, why: &str) -> Result<(), Refused> {
    refuse(&format!("{flag} {why}; without {needed} it does nothing: add {needed}, or drop {flag}"))
}

/// The TLS options of a server URL: a CA file or `--*-insecure` need `rediss://`, and
/// exclude each other. A URL that does not parse is left to the code that reads it.
pub fn tls(url: &str, url_flag: &str, ca: bool, ca_flag: &str, insecure: bool, insecure_flag: &str) -> Result<(), Refused> {
    if ca && insecure {
        return refuse(&format!(
            "{ca_flag} verifies the server's certificate against FILE and {insecure_flag} verifies nothing: keep one \
             of them"
        ));
    }
    let Ok(endpoint) = redis_ferry::net::Endpoint::parse(url) else { return Ok(()) };
    if endpoint.tls || !(ca || insecure) {
        return Ok(());
    }
    let flag = if ca { ca_flag } else { insecure_flag };
    refuse(&format!(
        "{flag} is about TLS certificates, but {url_flag} {} is plain TCP (no TLS): use a rediss:// URL, or drop {flag}",
        redis_ferry::net::url::redact(url)
    ))
}
