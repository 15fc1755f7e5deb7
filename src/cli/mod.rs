//! The subcommands that talk to servers, each in its own file.

pub mod cutover;
pub mod dump;
pub mod intake;
pub mod monitor;
pub mod progress;
pub mod restore;
pub mod source;
pub mod status;
pub mod sync;
pub mod tail;
pub mod target;
pub mod verify;
pub mod watch;
