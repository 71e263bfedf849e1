//! # berth-api
//!
//! `berth serve`: the Docker Engine API on a unix socket, so the docker CLI,
//! docker-compose and docker-py drive berth. A thin frontend: every handler parses the
//! request, calls one typed [`berth_engine::Engine`] method on a blocking thread
//! (`spawn_blocking`: engine calls block) and shapes the answer as Docker does. Nothing a
//! second frontend would need lives here.
//!
//! Paths are accepted versioned (`/v1.41/containers/json`) and unversioned (docker-java);
//! versions older than [`MIN_API_VERSION`] are refused as dockerd refuses them.

// Docker-shaped JSON documents (inspect, /info) are large `json!` literals.
#![recursion_limit = "256"]

mod containers;
mod create_map;
mod error;
mod images;
mod netvol;
mod server;
mod stream;
mod system;

pub use error::ApiError;
pub use server::{parse_host, serve, Listen, ServeError, ServeOptions};

/// The API version berth answers with (`/_ping`'s `API-Version`, `/version`'s
/// `ApiVersion`); clients negotiate down from theirs to it.
pub const API_VERSION: &str = "1.43";
/// The oldest API version berth accepts (dockerd's minimum before 25.0).
pub const MIN_API_VERSION: &str = "1.24";
