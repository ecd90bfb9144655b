//! acs-chat-emulator: a local emulator of the Azure Communication Services Chat and Identity
//! data planes, for the official SDKs unchanged.
//!
//! - `config`: flags and env vars. `telemetry`: logging. `app`: state, listeners, layers.
//! - `api`: HTTP handlers per resource, extractors, rendering per api-version.
//! - `auth`: bearer user tokens (`AcsUser`) and access-key signatures.
//! - `store`: all SQL (SQLite via rusqlite). `versions`: the api-version tables.
//! - `identifier`, `clock`, `tls`, `error`: ids, time, certificates, the ACS error body.
//! - `commands`: the subcommands other than `serve`. `seed`: declarative seed files. `healthcheck`: the client side of the `healthcheck` subcommand.
//! - `faults`, `throttle`: injected faults and the service's rate limits (applied by `api::chaos`).

pub mod api;
pub mod app;
pub mod auth;
pub mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod faults;
pub mod healthcheck;
pub mod identifier;
pub mod seed;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod tls;
pub mod versions;

pub use app::{App, AppState, build_app};
