//! Connections to Redis servers: URLs ([`url`]), TCP and TLS ([`conn`]). Shared by the
//! source side and the destination side.

pub mod conn;
pub mod url;

pub use conn::{Conn, ConnectOptions, NetError, Reply, TlsOptions};
pub use url::{Endpoint, Secret, UrlError};
