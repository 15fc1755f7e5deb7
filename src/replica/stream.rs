//! The replication command stream: SELECT, MULTI/EXEC, PING and offsets. Work in progress.

/// placeholder
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct StreamError;
