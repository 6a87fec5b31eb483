//! The store's integration tests, one binary: the same suite on SQLite and on a private
//! PostgreSQL server, and the failures a store must survive (a killed writer, a full disk,
//! a server that goes away and comes back).

mod crash;
mod disk_full;
mod fixtures;
mod host;
mod pg;
mod pg_down;
mod suite;
