//! `--source` and its companions: the server (every subcommand that reads a live one)
//! and the replica link's settings (`dump`, `tail`, `sync`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use redis_ferry::net::{ConnectOptions, Endpoint, Secret, TlsOptions};
use redis_ferry::replica::{Purpose, SourceOptions, SpoolConfig};

/// The environment variable that holds the source's password when the URL has none.
pub const PASSWORD_ENV: &str = "FERRY_SOURCE_PASSWORD";

/// The source server: every subcommand that reads one (`dump`, `tail`, `sync`,
/// `verify --source`).
#[derive(clap::Args, Debug)]
pub struct SourceServerArgs {
    /// The source server: redis://[[user]:password@]host[:port], or rediss:// for TLS.
    /// The password may instead come from the FERRY_SOURCE_PASSWORD environment variable.
    #[arg(long, value_name = "URL")]
    pub source: String,
    /// Verify the source's TLS certificate (rediss://) against the CA certificates in
    /// this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub source_ca: Option<PathBuf>,
    /// Do not verify the source's TLS certificate (rediss://) at all (anyone on the path
    /// can read and change the data).
    #[arg(long)]
    pub source_insecure: bool,
}

impl SourceServerArgs {
    /// The source's address, password and TLS settings (warning loudly about
    /// `--source-insecure`).
    pub fn endpoint(&self) -> anyhow::Result<(Endpoint, ConnectOptions)> {
        let (endpoint, connect) = server_endpoint(
            &self.source,
            PASSWORD_ENV,
            self.source_ca.as_ref(),
            self.source_insecure,
            ("source", "the source's"),
        )?;
        if let Some(db) = endpoint.db {
            anyhow::bail!(
                "--source {endpoint}: a source URL cannot name a db (/{db}): the replication link copies every db of \
                 the source, so none can be chosen; leave the /{db} out, and place the dbs on the destination with \
                 --db-map S=T or --target-db N (or the /N of --target)"
            );
        }
        Ok((endpoint, connect))
    }

    /// Refuses TLS options that cannot work with the URL given (see [`super::check`]).
    pub fn check(&self) -> Result<(), super::check::Refused> {
        super::check::tls(&self.source, "--source", self.source_ca.is_some(), "--source-ca", self.source_insecure, "--source-insecure")
    }
}

/// The source as a replica reads it (`dump`, `tail`, `sync`): the server, and the
/// replica link's own settings.
#[derive(clap::Args, Debug)]
pub struct SourceArgs {
    #[command(flatten)]
    pub server: SourceServerArgs,
    /// Consider the replication link dead after this many seconds without a byte.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub source_timeout: u64,
    /// After the link drops, keep trying to reconnect for this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub reconnect_for: u64,
    /// Received data waiting to be processed is kept in memory up to this many MiB,
    /// then spilled (lz4-compressed) to a temporary file.
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    pub spool_memory: usize,
    /// Directory for the spool's spill file (default: the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
}

impl SourceArgs {
    /// The validated options for `purpose`.
    pub fn options(&self, purpose: Purpose) -> anyhow::Result<SourceOptions> {
        let (endpoint, connect) = self.server.endpoint()?;
        let mut opts = SourceOptions::new(endpoint, purpose);
        opts.connect = connect;
        opts.timeout = Duration::from_secs(self.source_timeout.max(1));
        opts.reconnect_for = Duration::from_secs(self.reconnect_for);
        opts.spool = SpoolConfig {
            memory_limit: self.spool_memory.max(1) << 20,
            dir: self.spool_dir.clone(),
            ..SpoolConfig::default()
        };
        Ok(opts)
    }
}

/// A server URL with its password (from the URL, else from `password_env`) and the TLS
/// settings; `side` (`source`, `target`) names the options in messages (`--source-ca`),
/// and `who` the server ("the source's TLS certificate") in the loud warning that
/// `--*-insecure` with TLS gives on every run.
pub fn server_endpoint(
    url: &str,
    password_env: &str,
    ca: Option<&PathBuf>,
    insecure: bool,
    (side, who): (&str, &str),
) -> anyhow::Result<(Endpoint, ConnectOptions)> {
    let mut endpoint = Endpoint::parse(url)?;
    if endpoint.password.is_none() {
        if let Ok(p) = std::env::var(password_env) {
            if !p.is_empty() {
                endpoint.password = Some(Secret::new(p));
            }
        }
    }
    if let Some(ca) = ca {
        std::fs::metadata(ca).with_context(|| format!("--{side}-ca {}", ca.display()))?;
    }
    // Said once per side, however often the URL is read.
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let first = WARNED
        .lock()
        .map(|mut warned| {
            let new = !warned.iter().any(|s| s == side);
            if new {
                warned.push(side.to_string());
            }
            new
        })
        .unwrap_or(true);
    if insecure && endpoint.tls && first {
        super::status::warning(
            "insecure",
            &format!(
                "WARNING: --{side}-insecure: {who} TLS certificate is NOT verified; anyone on the network path can \
                 read and change the data"
            ),
        );
    }
    let connect = ConnectOptions { tls: TlsOptions { ca_file: ca.cloned(), insecure }, ..ConnectOptions::default() };
    Ok((endpoint, connect))
}
