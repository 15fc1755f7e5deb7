//! The subcommands that talk to servers, each in its own file, and what they share:
//! `source`/`target` (the server options), `check` (combinations of options refused
//! at the start), `preflight` (the checks before anything is sent: two different
//! servers, a destination that takes writes), `intake` (how `sync` takes in a snapshot),
//! and the operator's view of `sync` and `restore`: `status` (messages, and JSON Lines
//! with `--json`), `monitor` (phases and their progress), `watch` (a second connection
//! to the source: its BGSAVE wait, its remaining clients) and `cutover` (pausing the
//! source's writes for the switch). `progress` is `dump`'s byte bar.

pub mod check;
pub mod cutover;
pub mod dump;
pub mod intake;
pub mod monitor;
pub mod preflight;
pub mod progress;
pub mod restore;
pub mod source;
pub mod status;
pub mod sync;
pub mod tail;
pub mod target;
pub mod verify;
pub mod watch;
