//! `AppState`: what every handler shares, and the body limits of the listeners. Built by
//! `app::build_app`; it imports no handler, auth or assembly code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::Keys;
use crate::chat::Chat;
use crate::clock::Clock;
use crate::config::Config;
use crate::eventgrid::EventGrid;
use crate::faults::FaultRules;
use crate::store::Store;
use crate::throttle::Throttle;

/// Largest request body accepted by the service routes (a 28 KB message fits with room to spare).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest body of the identity routes and of the admin routes other than a state import: their
/// bodies are a few hundred bytes of JSON, and an access-key signature makes the emulator read
/// the whole body before it can check the key.
pub const MAX_SMALL_BODY_BYTES: usize = 64 * 1024;
/// Largest state document `PUT /_emulator/state` accepts.
pub const MAX_STATE_BYTES: usize = 512 * 1024 * 1024;

/// Everything handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The chat operations (every chat rule); chat handlers go through these, not the store.
    pub chat: Chat,
    pub store: Store,
    /// Event Grid subscriptions and their dispatcher (`/_emulator/eventSubscriptions`).
    pub eventgrid: EventGrid,
    pub keys: Arc<Keys>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// PEM that clients should trust (served at `/_emulator/ca.pem`).
    pub trust_pem: Arc<String>,
    /// Facts about this run, for `/_emulator/info`.
    pub runtime: Arc<Runtime>,
    /// Installed fault rules (`/_emulator/faults`).
    pub faults: Arc<FaultRules>,
    /// The service's rate limits, with `--throttle`.
    pub throttle: Option<Arc<Throttle>>,
}

/// Facts about the running process.
#[derive(Debug)]
pub struct Runtime {
    pub started: Instant,
    pub https_addr: SocketAddr,
    pub http_addr: SocketAddr,
}
