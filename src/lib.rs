//! acs-chat-emulator: a local emulator of the Azure Communication Services Chat and Identity
//! data planes, for the official SDKs unchanged.
//!
//! - `config`: flags and env vars. `telemetry`: logging. `app`: building and serving the
//!   listeners; `state`: what handlers share; `middleware`: the cross-cutting layers;
//!   `request`: what layers leave on a request; `body`: reading a body within its route's cap.
//! - `api`: HTTP adapters per resource (wire DTO → chat operation → render per api-version),
//!   extractors, the route table.
//! - `chat`: every chat rule, one function per operation. `auth`: who is calling (bearer user
//!   tokens, access-key signatures).
//! - `store`: all SQL (SQLite via rusqlite). `versions`: the api-version tables.
//! - `identifier`, `clock`, `tls`, `error`: ids, time, certificates, the ACS error body.
//! - `commands`: the subcommands other than `serve`. `seed`: declarative seed files.
//!   `healthcheck`: the client side of the `healthcheck` subcommand.
//! - `lock`: one file-backed emulator per data dir. `connections`: the connection cap and idle timeout of both listeners.
//! - `eventgrid`: the Event Grid webhook dispatcher over committed chat events.
//! - `faults`, `throttle`: injected faults and the service's rate limits (applied by `api::chaos`).
//!
//! Public are only what `main` and the tests use; the rest is `pub(crate)`.

pub mod api;
pub mod app;
pub(crate) mod auth;
pub(crate) mod body;
pub(crate) mod chat;
pub mod clock;
pub mod commands;
pub mod config;
pub(crate) mod connections;
pub(crate) mod error;
pub(crate) mod eventgrid;
pub(crate) mod faults;
pub(crate) mod healthcheck;
pub(crate) mod identifier;
pub(crate) mod lock;
pub(crate) mod middleware;
pub(crate) mod request;
pub(crate) mod seed;
pub(crate) mod state;
pub(crate) mod store;
pub mod telemetry;
pub(crate) mod throttle;
pub(crate) mod tls;
pub mod versions;

pub use app::{App, build_app};
pub use state::AppState;
