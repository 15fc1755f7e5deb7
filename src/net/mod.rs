//! Connections to Redis servers: URLs, TCP and TLS.
