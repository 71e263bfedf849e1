//! berth-bridge-dns: name resolution for containers on bridge networks.
//!
//! * [`records`] — the records file (`IP NAME [ALIAS...]` per line) and its writer,
//!   [`records::RecordsFile`] (locked, atomic updates). Light: no tokio, no hickory.
//! * [`pidfile`] — the responder's pid file and a liveness check for the network backend.
//! * `server` (feature `server`, on by default) — the responder `berth-dns`: one process per
//!   network, listening on the network's gateway address, answering from the network's
//!   records file and forwarding other names upstream.
//!
//! The network backend depends on this crate with `default-features = false` and, per
//! network: writes the records file with [`records::RecordsFile::add`] on attach, starts
//! `berth-dns --listen <gateway>:53 --hosts <file> --pidfile <pid>` unless
//! [`pidfile::running_pid`] finds one, points the container's resolv.conf at the gateway
//! with `search dns.berth`, and on detach calls [`records::RecordsFile::remove`] (then
//! [`records::RecordsFile::delete`] after the last container, which stops the responder).

pub mod pidfile;
pub mod records;
#[cfg(feature = "server")]
pub mod server;

pub use records::{Records, RecordsError, RecordsFile};
