//! The replication command stream: SELECT, MULTI/EXEC, PING and offsets. Work in progress.
