//! The spool between the network reader and everything downstream. Work in progress.
