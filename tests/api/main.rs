//! HTTP contract tests: a real emulator on port 0 (plain HTTP listener, plus HTTPS where TLS is
//! the point), driven with reqwest. One integration binary; one module per resource.

mod helpers;

mod auth_hardening;
mod emulator;
mod errors;
mod eventgrid;
mod events;
mod faults;
mod identity;
mod images;
mod limits;
mod messages;
mod participants;
mod persistence;
mod preview2;
mod receipts;
mod rules;
mod smoke;
mod threads;
mod tls;
mod versions;
