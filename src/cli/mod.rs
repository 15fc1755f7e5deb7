//! The subcommands that talk to servers, each in its own file.

pub mod dump;
pub mod progress;
pub mod source;
pub mod tail;
