//! The checks made before a run sends anything that could change a server
//! ([`redis_ferry::preflight`]), on connections of their own.

use redis_ferry::net::{Conn, ConnectOptions, Endpoint};
use redis_ferry::preflight::{self, ServerFacts};

use super::{source, target};

/// Source and destination are two servers, neither fed by the other; with `writes`,
/// the destination takes writes. Reads `INFO` on both (and where the `run_id`s cannot
/// decide, a token on each under a `MONITOR`); writes nothing.
pub fn pair(
    source: (&Endpoint, &ConnectOptions),
    target: (&Endpoint, &ConnectOptions),
    writes: bool,
) -> anyhow::Result<(Option<ServerFacts>, ServerFacts)> {
    let mut s = Conn::open(source.0, source.1, source::PASSWORD_ENV)?;
    let mut t = Conn::open(target.0, target.1, target::PASSWORD_ENV)?;
    let reopen = |to_source: bool| match to_source {
        true => Conn::open(source.0, source.1, source::PASSWORD_ENV),
        false => Conn::open(target.0, target.1, target::PASSWORD_ENV),
    };
    Ok(preflight::check_pair(&mut s, &mut t, &reopen, writes)?)
}

/// The destination takes writes (it is not a replica).
pub fn writable(target: (&Endpoint, &ConnectOptions)) -> anyhow::Result<ServerFacts> {
    let mut t = Conn::open(target.0, target.1, target::PASSWORD_ENV)?;
    let facts = ServerFacts::read(&mut t)?;
    preflight::check_writable(&facts, false)?;
    Ok(facts)
}
