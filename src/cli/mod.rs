//! The subcommands that talk to servers, each in its own file.

pub mod dump;
pub mod intake;
pub mod progress;
pub mod restore;
pub mod source;
pub mod sync;
pub mod tail;
pub mod target;
pub mod verify;
