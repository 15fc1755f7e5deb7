//! Shared helpers for integration tests: real Redis servers of the versions
//! `scripts/servers` builds, a tiny RESP2 client to drive them, and a way to
//! run the Python fixture scripts.
//!
//! Deliberately independent of the `redis_ferry` library: these helpers are
//! what the library is checked against, so they must not share its bugs.
//!
//! Use from a test file with `mod common;`.
#![allow(dead_code)]

pub mod fake_master;
pub mod forward;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Every Redis version CI tests against (built or linked by `scripts/servers`).
pub const CI_VERSIONS: &[&str] = &["2.8.17", "3.0.5", "3.2.6", "5.0.6", "6.2.14", "7.0.15"];

/// Today's servers, which `scripts/servers` builds from Debian source packages
/// into the per-machine cache ([`new_servers_dir`]). Named `redis-X.Y.Z` or
/// `valkey-X.Y.Z`: anything taking a version takes these names too. Kept apart
/// from [`CI_VERSIONS`], whose bare version numbers the older tests compare;
/// `tests/new_servers.rs` checks each starts and answers.
pub const NEW_VERSIONS: &[&str] = &["redis-8.0.6", "redis-8.6.3", "valkey-8.1.1", "valkey-9.1.2"];

/// The Redis Stack modules `scripts/servers` puts beside today's servers, which
/// load into Redis 8 (see [`module_path`]).
pub const REDIS_MODULES: &[&str] = &["rejson", "redisbloom", "redisearch"];

/// How long a server gets to answer PING after starting.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at starting a server, each on a new port, before giving up.
/// Another test's server may grab the port between our probe and its bind.
const START_ATTEMPTS: usize = 5;

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where `scripts/servers` puts the servers: `$FERRY_REDIS_SERVERS` if set,
/// else `target/redis-servers` in the repository.
pub fn servers_dir() -> PathBuf {
    match std::env::var_os("FERRY_REDIS_SERVERS") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target").join("redis-servers"),
    }
}

/// Where `scripts/servers` builds today's servers ([`NEW_VERSIONS`]), outside
/// the clone so that every clone on the machine shares them:
/// `${XDG_CACHE_HOME:-$HOME/.cache}/redis-ferry/servers`.
pub fn new_servers_dir() -> PathBuf {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let cache = non_empty("XDG_CACHE_HOME")
        .or_else(|| non_empty("HOME").map(|home| home.join(".cache")))
        .expect("neither XDG_CACHE_HOME nor HOME is set: cannot find the server cache");
    cache.join("redis-ferry").join("servers")
}

/// True for a Valkey name of [`NEW_VERSIONS`] (`valkey-9.1.2`).
pub fn is_valkey(version: &str) -> bool {
    version.starts_with("valkey-")
}

/// The directory holding the tools of `version`: a name of [`NEW_VERSIONS`]
/// (`redis-8.6.3`, `valkey-9.1.2`) is in [`new_servers_dir`], an old bare
/// version (`7.0.15`) in [`servers_dir`].
pub fn server_dir(version: &str) -> PathBuf {
    if version.starts_with("redis-") || is_valkey(version) {
        new_servers_dir().join(version)
    } else {
        servers_dir().join(version)
    }
}

/// The file name `tool` has in `version`'s build: Valkey's are `valkey-server`,
/// `valkey-cli`, `valkey-check-rdb` where Redis has `redis-...`.
pub fn tool_name(version: &str, tool: &str) -> String {
    match tool.strip_prefix("redis-") {
        Some(rest) if is_valkey(version) => format!("valkey-{rest}"),
        _ => tool.to_owned(),
    }
}

/// Path of `tool` (`redis-server`, `redis-cli`, `redis-check-rdb`, ...) for
/// `version` (an old Redis version or a name of [`NEW_VERSIONS`]; Valkey's
/// tools are found under the Redis names), if it is installed.
pub fn server_bin(version: &str, tool: &str) -> Option<PathBuf> {
    let path = server_dir(version).join(tool_name(version, tool));
    // is_file follows symlinks: 7.0.15's tools link to Debian's /usr/bin.
    path.is_file().then_some(path)
}

/// Path of Redis Stack module `name` (one of [`REDIS_MODULES`]), as
/// `scripts/servers` installs it. Missing, it is handled as a missing server
/// (see `missing`): a failure under `FERRY_REQUIRE_SERVERS`, None only when
/// skipping is allowed.
pub fn module_path(name: &str) -> Option<PathBuf> {
    let path = new_servers_dir().join("redis-stack-0.1.8").join(format!("{name}.so"));
    if path.is_file() {
        return Some(path);
    }
    missing(&format!("module {name}"), &path)
}

/// Name of the RDB checker `version` ships: 2.8 and 3.0 only have
/// `redis-check-dump`; 3.2 and later have `redis-check-rdb`.
pub fn rdb_checker_name(version: &str) -> &'static str {
    if version.starts_with("2.") || version.starts_with("3.0") {
        "redis-check-dump"
    } else {
        "redis-check-rdb"
    }
}

/// Path of the RDB checker for `version` (see [`rdb_checker_name`]).
pub fn rdb_checker(version: &str) -> Option<PathBuf> {
    server_bin(version, rdb_checker_name(version))
}

/// Runs the RDB checker of `version` on `rdb`. Ok(output) if it accepts the
/// file, Err(output) if not. 2.8/3.0's redis-check-dump exits 0 even on a
/// corrupt file, so for it the verdict is read from what it prints.
pub fn check_rdb(version: &str, rdb: &Path) -> Result<String, String> {
    let checker = rdb_checker(version).unwrap_or_else(|| {
        panic!(
            "{} of Redis {version} is not installed: run scripts/servers",
            rdb_checker_name(version)
        )
    });
    let out = Command::new(&checker)
        .arg(rdb)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", checker.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let complained = text.contains("Error trace") || text.contains("unprocessable");
    if out.status.success() && !complained {
        Ok(text)
    } else {
        Err(format!(
            "{} {} ({}):\n{text}",
            checker.display(),
            rdb.display(),
            out.status
        ))
    }
}

/// The RDB format version (the digits after "REDIS" in dump.rdb) that a
/// server of `version` writes with SAVE.
pub fn rdb_version_of(version: &str) -> u32 {
    let mut parts = version
        .split('.')
        .map(|n| n.parse::<u32>().expect("numeric version"));
    match (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) {
        (2, 6..=8) | (3, 0) => 6,
        (3, 2) => 7,
        (4, 0) => 8,
        (5, 0) | (6, _) => 9,
        (7, 0) => 10,
        (7, 2) => 11,
        (7, 4) | (8, _) => 12,
        _ => panic!("rdb_version_of: unknown Redis version {version}"),
    }
}

/// Runs `python3 script args...` from the repository root and returns its
/// output; panics with its stdout and stderr if it fails.
pub fn run_python(script: &Path, args: &[&str]) -> Output {
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    if !out.status.success() {
        panic!(
            "python3 {} {:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            script.display(),
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    }
    out
}

/// Handles a missing server binary: under `FERRY_REQUIRE_SERVERS` (set by
/// scripts/test and so in CI), or unless `FERRY_ALLOW_MISSING_SERVERS=1`, it
/// is a test failure; otherwise the test is skipped (returns None).
fn missing_server(version: &str) -> Option<RedisServer> {
    let path = server_dir(version).join(tool_name(version, "redis-server"));
    // Today's names say what they are (`valkey-9.1.2`); old versions are bare.
    let what = if version.contains('-') { version.to_owned() } else { format!("Redis {version}") };
    missing(&what, &path)
}

/// `what` (at `path`) is missing: a panic, or None where skipping is allowed
/// (see [`missing_server`]).
fn missing<T>(what: &str, path: &Path) -> Option<T> {
    let required = std::env::var_os("FERRY_REQUIRE_SERVERS").is_some();
    let allowed = std::env::var("FERRY_ALLOW_MISSING_SERVERS").as_deref() == Ok("1");
    if !required && allowed {
        eprintln!("skipping: {what} missing ({})", path.display());
        return None;
    }
    let hint = if required {
        "FERRY_REQUIRE_SERVERS is set, so this is a failure"
    } else {
        "or set FERRY_ALLOW_MISSING_SERVERS=1 to skip tests that need it"
    };
    panic!(
        "{what} is not installed ({} missing): run scripts/servers to build it ({hint})",
        path.display()
    );
}

/// A free TCP port on 127.0.0.1 (free when probed: see START_ATTEMPTS).
fn free_port() -> u16 {
    let mut last_err = None;
    for _ in 0..5 {
        match TcpListener::bind(("127.0.0.1", 0)) {
            Ok(listener) => return listener.local_addr().expect("local_addr").port(),
            Err(e) => last_err = Some(e),
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("cannot bind 127.0.0.1:0: {}", last_err.unwrap());
}

/// Last `lines` lines of a file, for panic messages.
fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned());
    let text = text.unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A real redis-server of some version, in its own temporary directory on
/// its own port. Killed when dropped.
pub struct RedisServer {
    child: Child,
    port: u16,
    version: String,
    bin: PathBuf,
    args: Vec<String>,
    // Declared last so the directory is removed after the process is gone.
    dir: tempfile::TempDir,
}

enum StartError {
    /// Someone else took the port first: try another.
    PortTaken,
}

impl RedisServer {
    /// Starts Redis `version` with the default test configuration: no
    /// snapshots, no AOF, in the foreground. See [`RedisServer::start_with`].
    pub fn start(version: &str) -> Option<RedisServer> {
        Self::start_with(version, &[])
    }

    /// Starts Redis `version`, with `extra_config` passed as `--name value`
    /// after the defaults (so it can override them). Returns None only when
    /// the server is missing and skipping is allowed (see `missing_server`);
    /// panics on any other problem.
    pub fn start_with(version: &str, extra_config: &[(&str, &str)]) -> Option<RedisServer> {
        let bin = match server_bin(version, "redis-server") {
            Some(bin) => bin,
            None => return missing_server(version),
        };
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&bin, version, extra_config) {
                Ok(server) => return Some(server),
                Err(StartError::PortTaken) => continue,
            }
        }
        panic!("Redis {version}: no free port after {START_ATTEMPTS} attempts");
    }

    fn try_start(
        bin: &Path,
        version: &str,
        extra_config: &[(&str, &str)],
    ) -> Result<RedisServer, StartError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("redis-{version}-"))
            .tempdir()
            .expect("create temp dir for redis");
        let port = free_port();
        let log_path = dir.path().join("redis.log");
        let log = File::create(&log_path).expect("create redis.log");
        // `--save ""` must be a real empty argument: every version from 2.8 on
        // reads it as "no save points".
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            dir.path().to_str().expect("temp dir path is UTF-8"),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        .map(String::from)
        .to_vec();
        for (name, value) in extra_config {
            let name = name.trim_start_matches('-');
            // The helpers rely on knowing these two (port(), dir()).
            assert!(
                name != "port" && name != "dir",
                "start_with: {name} is set by RedisServer"
            );
            args.push(format!("--{name}"));
            args.push(value.to_string());
        }
        let mut child = Command::new(bin)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let log_tail = tail(&log_path, 30);
                if log_tail.contains("Address already in use") {
                    return Err(StartError::PortTaken);
                }
                panic!(
                    "Redis {version} exited ({status}) before answering PING; args {args:?}; \
                     log tail:\n{log_tail}"
                );
            }
            // The server answering must be ours: a server of another test
            // that took the same port would answer PING too.
            if ping_pid(port) == Some(child.id()) {
                return Ok(RedisServer {
                    child,
                    port,
                    version: version.to_owned(),
                    bin: bin.to_path_buf(),
                    args,
                    dir,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "Redis {version} did not answer PING on port {port} within {:?}; \
                     log tail:\n{}",
                    START_TIMEOUT,
                    tail(&log_path, 30)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (as a crash would: nothing saved) and starts it again on the
    /// same port, in the same directory, with the same configuration.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::OpenOptions::new().append(true).open(self.log_path()).expect("open redis.log");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let mut child = Command::new(&self.bin)
                .args(&self.args)
                .current_dir(self.dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log.try_clone().expect("dup log"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
            let started = loop {
                if ping_pid(self.port) == Some(child.id()) {
                    break true;
                }
                if child.try_wait().expect("try_wait").is_some() {
                    break false;
                }
                assert!(Instant::now() < deadline, "Redis {} did not restart:\n{}", self.version, tail(&self.log_path(), 30));
                thread::sleep(Duration::from_millis(20));
            };
            if started {
                self.child = child;
                return;
            }
            // The port may still be held for a moment by the old process.
            assert!(Instant::now() < deadline, "Redis {} did not restart:\n{}", self.version, tail(&self.log_path(), 30));
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "127.0.0.1:PORT"
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The server's working directory (`--dir`), where it writes dump.rdb.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where SAVE/BGSAVE write the snapshot.
    pub fn rdb_path(&self) -> PathBuf {
        self.dir().join("dump.rdb")
    }

    /// The server's stdout/stderr log.
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("redis.log")
    }

    /// The whole log so far, e.g. for assertion messages.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.log_path()).unwrap_or_default()).into_owned()
    }

    /// Path of another tool of this server's version (`redis-cli`, ...).
    pub fn tool(&self, tool: &str) -> Option<PathBuf> {
        server_bin(&self.version, tool)
    }

    /// A new connection to this server.
    pub fn client(&self) -> Client {
        Client::connect(self.port)
            .unwrap_or_else(|e| panic!("connect to Redis {} on {}: {e}", self.version, self.port))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// PINGs 127.0.0.1:port and, if it answers, returns the server's pid from
/// INFO (present since 2.6). None while it is not up yet.
fn ping_pid(port: u16) -> Option<u32> {
    let mut client = Client::connect(port).ok()?;
    client.set_timeout(Duration::from_secs(2));
    match client.try_cmd(&[b"PING"]).ok()? {
        Reply::Status(s) if s == "PONG" => {}
        _ => return None, // e.g. -LOADING
    }
    client
        .try_info("server")
        .ok()?
        .field("process_id")?
        .parse()
        .ok()
}

/// One RESP2 reply.
#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    /// None is the nil bulk string ($-1).
    Bulk(Option<Vec<u8>>),
    /// None is the nil array (*-1).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// Panics unless the reply is +OK.
    #[track_caller]
    pub fn ok(&self) {
        assert!(
            matches!(self, Reply::Status(s) if s == "OK"),
            "expected +OK, got {self:?}"
        );
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Status(s) if s == "OK")
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Reply::Bulk(None) | Reply::Array(None))
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The integer of an integer reply; panics otherwise.
    #[track_caller]
    pub fn as_int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }

    /// The bytes of a (non-nil) bulk or status reply; panics otherwise.
    #[track_caller]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Reply::Bulk(Some(b)) => b,
            Reply::Status(s) => s.as_bytes(),
            other => panic!("expected a bulk reply, got {other:?}"),
        }
    }

    /// Like [`Reply::as_bytes`], as UTF-8 (lossy).
    #[track_caller]
    pub fn as_string(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }

    /// The elements of a (non-nil) array reply; panics otherwise.
    #[track_caller]
    pub fn as_array(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(items)) => items,
            other => panic!("expected an array reply, got {other:?}"),
        }
    }

    /// The message of an error reply; panics otherwise.
    #[track_caller]
    pub fn as_error(&self) -> &str {
        match self {
            Reply::Error(e) => e,
            other => panic!("expected an error reply, got {other:?}"),
        }
    }

    /// The reply encoded back into RESP2 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Status(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
            Reply::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
            Reply::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(None) => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(Some(items)) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for item in items {
                    item.encode_into(out);
                }
            }
        }
    }
}

/// Shows bulk strings as (lossy) text rather than lists of numbers, and cuts
/// long ones, so assertion messages stay readable.
impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Status(s) => write!(f, "+{s}"),
            Reply::Error(s) => write!(f, "-{s}"),
            Reply::Int(n) => write!(f, ":{n}"),
            Reply::Bulk(None) => write!(f, "(nil)"),
            Reply::Bulk(Some(b)) if b.len() > 200 => {
                write!(
                    f,
                    "{:?}... ({} bytes)",
                    String::from_utf8_lossy(&b[..200]),
                    b.len()
                )
            }
            Reply::Bulk(Some(b)) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Reply::Array(None) => write!(f, "(nil array)"),
            Reply::Array(Some(items)) => f.debug_list().entries(items).finish(),
        }
    }
}

/// Parsed `INFO` output.
pub struct Info(pub Vec<(String, String)>);

impl Info {
    pub fn parse(text: &str) -> Info {
        Info(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_owned(), v.trim_end().to_owned()))
                .collect(),
        )
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny blocking RESP2 client. Test code: it panics on I/O and protocol
/// errors (the `try_` methods return them instead); Redis error replies are
/// returned as [`Reply::Error`], not panics.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn connect(port: u16) -> io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        let client = Client {
            reader: BufReader::with_capacity(64 * 1024, stream.try_clone()?),
            writer: stream,
        };
        // Generous, but a hung server must fail the test rather than hang it.
        client.set_timeout(Duration::from_secs(60));
        Ok(client)
    }

    /// Read and write timeout of the connection.
    pub fn set_timeout(&self, timeout: Duration) {
        let _ = self.writer.set_read_timeout(Some(timeout));
        let _ = self.writer.set_write_timeout(Some(timeout));
    }

    /// Sends one command and reads its reply.
    #[track_caller]
    pub fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        self.try_cmd(args)
            .unwrap_or_else(|e| panic!("{}: {e}", show_cmd(args)))
    }

    /// [`Client::cmd`] with string arguments: `cmd_str(&["SET", "k", "v"])`.
    #[track_caller]
    pub fn cmd_str(&mut self, args: &[&str]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.cmd(&args)
    }

    pub fn try_cmd(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut buf = Vec::new();
        encode_command(&mut buf, args);
        self.writer.write_all(&buf)?;
        self.read_reply()
    }

    /// Sends all commands at once, then reads one reply per command.
    #[track_caller]
    pub fn pipeline(&mut self, cmds: Vec<Vec<Vec<u8>>>) -> Vec<Reply> {
        self.try_pipeline(&cmds)
            .unwrap_or_else(|e| panic!("pipeline of {}: {e}", cmds.len()))
    }

    pub fn try_pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) -> io::Result<Vec<Reply>> {
        // Redis keeps reading commands while replies queue up on its side,
        // so writing everything before reading cannot deadlock.
        let mut buf = Vec::new();
        for cmd in cmds {
            let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
            encode_command(&mut buf, &args);
        }
        self.writer.write_all(&buf)?;
        cmds.iter().map(|_| self.read_reply()).collect()
    }

    /// Writes raw bytes to the connection (e.g. inline commands, or junk).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// The underlying buffered reader, for tests that read a raw stream after
    /// a command (e.g. SYNC's payload). Bytes already buffered are kept.
    pub fn reader(&mut self) -> &mut BufReader<TcpStream> {
        &mut self.reader
    }

    /// Parsed `INFO section`.
    #[track_caller]
    pub fn info(&mut self, section: &str) -> Info {
        self.try_info(section)
            .unwrap_or_else(|e| panic!("INFO {section}: {e}"))
    }

    pub fn try_info(&mut self, section: &str) -> io::Result<Info> {
        match self.try_cmd(&[b"INFO", section.as_bytes()])? {
            Reply::Bulk(Some(text)) => Ok(Info::parse(&String::from_utf8_lossy(&text))),
            other => Err(protocol_error(format!("INFO {section} replied {other:?}"))),
        }
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader)
    }
}

fn show_cmd(args: &[&[u8]]) -> String {
    let words: Vec<String> = args
        .iter()
        .take(4)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    words.join(" ")
}

fn encode_command(buf: &mut Vec<u8>, args: &[&[u8]]) {
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
}

fn protocol_error(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads one line without its CRLF.
fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    // Lossy: error messages may quote arbitrary bytes from the command.
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(protocol_error(format!(
            "line without CRLF: {:?}",
            String::from_utf8_lossy(&line)
        )));
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn parse_len(s: &str) -> io::Result<i64> {
    s.parse()
        .map_err(|_| protocol_error(format!("bad length or integer {s:?}")))
}

/// Reads one RESP2 reply from any buffered reader (e.g. a server's stream).
pub fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    Ok(match kind {
        "+" => Reply::Status(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Int(parse_len(rest)?),
        "$" => match parse_len(rest)? {
            -1 => Reply::Bulk(None),
            n if n < 0 => return Err(protocol_error(format!("bad bulk length {n}"))),
            n => {
                let mut data = vec![0; n as usize + 2];
                r.read_exact(&mut data)?;
                if !data.ends_with(b"\r\n") {
                    return Err(protocol_error("bulk string without CRLF".into()));
                }
                data.truncate(n as usize);
                Reply::Bulk(Some(data))
            }
        },
        "*" => match parse_len(rest)? {
            -1 => Reply::Array(None),
            n if n < 0 => return Err(protocol_error(format!("bad array length {n}"))),
            n => Reply::Array(Some(
                (0..n).map(|_| read_reply(r)).collect::<io::Result<_>>()?,
            )),
        },
        _ => return Err(protocol_error(format!("unexpected reply line {line:?}"))),
    })
}

/// Builds a command for [`Client::pipeline`] from string-ish arguments.
pub fn command<A: AsRef<[u8]>>(args: &[A]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_ref().to_vec()).collect()
}

/// Runs openssl to make a CA and a certificate for localhost/127.0.0.1 signed by it.
pub fn make_certs(dir: &Path) {
    let sh = |script: &str| {
        let st = Command::new("sh").arg("-c").arg(script).current_dir(dir).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
        assert!(st.success(), "openssl failed: {script}");
    };
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj '/CN=ferry test CA' \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign");
    sh("openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=localhost'");
    sh("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf && \
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf");
}

/// The redis-ferry binary of this build, with the password variables cleared (so a
/// developer's environment cannot change what a test does).
pub fn ferry() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_redis-ferry"));
    c.env_remove("FERRY_SOURCE_PASSWORD").env_remove("FERRY_TARGET_PASSWORD");
    c
}

/// A `redis-ferry sync` running in the background. Its stderr is collected into
/// `log`; `ready` gets a message once the snapshot is applied.
pub struct SyncRun {
    pub child: Child,
    pub ready: std::sync::mpsc::Receiver<()>,
    pub log: thread::JoinHandle<String>,
}

/// Starts `sync` from `source` into `target` with `extra` arguments first.
pub fn start_sync(source: &RedisServer, target: &RedisServer, extra: &[&str]) -> SyncRun {
    let mut child = ferry()
        .arg("sync")
        .args(extra)
        .args(["--source", &format!("redis://{}", source.addr()), "--target", &format!("redis://{}", target.addr())])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start redis-ferry sync");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, ready) = std::sync::mpsc::channel();
    let log = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.expect("stderr is text");
            if line.contains("replaying the command stream") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    SyncRun { child, ready, log }
}

impl SyncRun {
    /// Waits (up to a minute) until the snapshot is applied.
    pub fn wait_ready(&self) {
        self.ready.recv_timeout(Duration::from_secs(60)).expect("the snapshot was applied");
    }

    /// SIGTERM, then its exit status and everything it wrote to stderr.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let killed = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(killed.success(), "kill -TERM {}", self.child.id());
        let status = self.child.wait().expect("wait for sync");
        (status, self.log.join().expect("stderr reader"))
    }

    /// SIGTERM; the run must exit 0. Its stderr.
    pub fn stop(self) -> String {
        let (status, log) = self.terminate();
        assert!(status.success(), "sync exited with {status}:\n{log}");
        log
    }
}

/// Waits (up to 30 s) until the source reports its replica's acknowledged offset at
/// its own: everything written so far is confirmed by the destination.
pub fn wait_caught_up(source: &RedisServer) {
    let mut c = source.client();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let info = c.info("replication");
        let master: u64 = info.field("master_repl_offset").expect("master_repl_offset").parse().expect("a number");
        let acked: Option<u64> = info
            .field("slave0")
            .and_then(|s| s.split(',').find_map(|f| f.strip_prefix("offset=")).map(|o| o.parse().expect("a number")));
        if acked == Some(master) {
            return;
        }
        assert!(Instant::now() < until, "sync did not catch up: acked {acked:?}, master {master}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A Redis with TLS on a second port, its certificate signed by a private CA.
pub struct TlsServer {
    pub server: RedisServer,
    /// `rediss://localhost:PORT`.
    pub url: String,
    /// The CA's certificate file.
    pub ca: String,
    _certs: tempfile::TempDir,
}

/// Starts Redis `version` (built with TLS) with `extra` configuration and a TLS port.
pub fn tls_server(version: &str, extra: &[(&str, &str)]) -> Option<TlsServer> {
    let certs = tempfile::tempdir().expect("temp dir");
    make_certs(certs.path());
    let tls_port = free_port().to_string();
    let p = |f: &str| certs.path().join(f).to_str().expect("UTF-8 path").to_string();
    let (cert, key, ca) = (p("server.crt"), p("server.key"), p("ca.crt"));
    let mut config = vec![
        ("tls-port", tls_port.as_str()),
        ("tls-cert-file", cert.as_str()),
        ("tls-key-file", key.as_str()),
        ("tls-ca-cert-file", ca.as_str()),
        ("tls-auth-clients", "no"),
    ];
    config.extend_from_slice(extra);
    let server = RedisServer::start_with(version, &config)?;
    Some(TlsServer { server, url: format!("rediss://localhost:{tls_port}"), ca, _certs: certs })
}
