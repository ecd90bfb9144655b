//! Command-line flags and their `ACS_EMULATOR_*` environment twins. Parsing only: nothing here
//! opens files or sockets.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The documented, well-known development access key (like Azurite's dev account key). It is not
/// a secret: anyone can read it here. Override it with `--access-key` for anything shared.
pub const DEFAULT_ACCESS_KEY: &str =
    "YWNzLWNoYXQtZW11bGF0b3Igd2VsbC1rbm93biBkZXZlbG9wbWVudCBrZXk7IG5vdCBhIHNlY3JldCEhISEh";

/// The fixed resource id of the one emulated ACS resource; it appears inside every user id.
pub const DEFAULT_RESOURCE_ID: &str = "a1b2c3d4-0000-4000-8000-00000000ac5e";

/// The ARM id events name as their `topic` unless `--resource-arm-id` says otherwise: a zero
/// subscription, an `acs-emulator` resource group and resource.
pub const DEFAULT_RESOURCE_ARM_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/acs-emulator/providers/Microsoft.Communication/communicationServices/acs-emulator";

/// How strictly credentials are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Verify HMAC signatures and bearer-token signatures, expiry, revocation and scope.
    Strict,
    /// Accept any well-formed bearer token and any access-key signature.
    Lenient,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Local emulator of the Azure Communication Services Chat and Identity APIs.
///
/// With no subcommand it serves (same as `serve`).
#[derive(Debug, Parser)]
#[command(
    name = "acs-chat-emulator",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Config,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at start and moved into the server; boxing saves nothing measurable"
)]
pub enum Command {
    /// Run the emulator (the default).
    Serve(Config),
    /// Check a running emulator's health endpoint: exit 0 if healthy, 1 if not (for container
    /// health checks without curl or a shell).
    Healthcheck(HealthcheckArgs),
    /// Print the connection string clients should use.
    ConnectionString(ConnectionStringArgs),
    /// Write the whole state of a data dir as a JSON document (stdout or --output).
    Export(ExportArgs),
    /// Replace the whole state of a data dir with a JSON document.
    Import(ImportArgs),
    /// Delete all state in a data dir.
    Reset(ResetArgs),
}

/// Arguments of `export`.
#[derive(Clone, Debug, Args)]
pub struct ExportArgs {
    /// Data dir holding emulator.db.
    #[arg(long, env = "ACS_EMULATOR_DATA_DIR", default_value = ".acs-emulator")]
    pub data_dir: PathBuf,
    /// File to write (default: stdout).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Arguments of `import`.
#[derive(Clone, Debug, Args)]
pub struct ImportArgs {
    /// Data dir holding emulator.db (created if missing).
    #[arg(long, env = "ACS_EMULATOR_DATA_DIR", default_value = ".acs-emulator")]
    pub data_dir: PathBuf,
    /// The state document to load.
    pub file: PathBuf,
}

/// Arguments of `reset`.
#[derive(Clone, Debug, Args)]
pub struct ResetArgs {
    /// Data dir holding emulator.db.
    #[arg(long, env = "ACS_EMULATOR_DATA_DIR", default_value = ".acs-emulator")]
    pub data_dir: PathBuf,
    /// Keep identities and their token state.
    #[arg(long)]
    pub keep_identities: bool,
}

/// Arguments of `healthcheck`.
#[derive(Clone, Debug, Args)]
pub struct HealthcheckArgs {
    /// Health URL to query (plain http); default: the local HTTP port's /_emulator/health.
    #[arg(long, env = "ACS_EMULATOR_HEALTHCHECK_URL")]
    pub url: Option<String>,
    /// HTTP port of the emulator, used when --url is not given.
    #[arg(long, env = "ACS_EMULATOR_HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

/// Arguments of `connection-string`.
#[derive(Clone, Debug, Args)]
pub struct ConnectionStringArgs {
    /// Public base URL (default: https://localhost:<https-port>).
    #[arg(long, env = "ACS_EMULATOR_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// HTTPS port, used when --public-url is not given.
    #[arg(long, env = "ACS_EMULATOR_HTTPS_PORT", default_value_t = 8443)]
    pub https_port: u16,
    /// Base64 access key (default: the well-known development key).
    #[arg(long, env = "ACS_EMULATOR_ACCESS_KEY", default_value = DEFAULT_ACCESS_KEY, hide_default_value = true)]
    pub access_key: String,
}

impl ConnectionStringArgs {
    /// `endpoint=<url>/;accesskey=<key>`.
    pub fn connection_string(&self) -> String {
        let endpoint = match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("https://localhost:{}", self.https_port),
        };
        format!("endpoint={endpoint}/;accesskey={}", self.access_key)
    }
}

/// Settings of the server (`serve`, or no subcommand).
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// HTTPS port (0 picks a free port). The official SDKs need HTTPS.
    #[arg(long, env = "ACS_EMULATOR_HTTPS_PORT", default_value_t = 8443)]
    pub https_port: u16,

    /// Plain HTTP port (0 picks a free port), for curl and health checks.
    #[arg(long, env = "ACS_EMULATOR_HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,

    /// Address to listen on.
    #[arg(long, env = "ACS_EMULATOR_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Folder for the database and the generated TLS certificates.
    #[arg(long, env = "ACS_EMULATOR_DATA_DIR", default_value = ".acs-emulator")]
    pub data_dir: PathBuf,

    /// Keep all state in memory: nothing survives a restart (certificates still go to --data-dir).
    #[arg(long, env = "ACS_EMULATOR_IN_MEMORY", default_value_t = false)]
    pub in_memory: bool,

    /// Base64 access key of the emulated resource (default: the well-known development key).
    #[arg(long, env = "ACS_EMULATOR_ACCESS_KEY", default_value = DEFAULT_ACCESS_KEY, hide_default_value = true)]
    pub access_key: String,

    /// Resource id (GUID) that user ids and tokens carry.
    #[arg(long, env = "ACS_EMULATOR_RESOURCE_ID", default_value = DEFAULT_RESOURCE_ID)]
    pub resource_id: String,

    /// ARM id of the emulated Communication Services resource: the `topic` (Event Grid schema)
    /// and `source` (CloudEvents) of every chat event. Independent of --resource-id.
    #[arg(long, env = "ACS_EMULATOR_RESOURCE_ARM_ID", default_value = DEFAULT_RESOURCE_ARM_ID)]
    pub resource_arm_id: String,

    /// Subscribe this webhook URL to every chat event in the Event Grid schema, as
    /// `webhook-1`, `webhook-2`, … (repeatable; the env twin takes a comma-separated list).
    /// Each must pass the validation handshake at start.
    #[arg(
        long = "event-webhook",
        env = "ACS_EMULATOR_EVENT_WEBHOOKS",
        value_delimiter = ','
    )]
    pub event_webhooks: Vec<String>,

    /// Multiply every Event Grid retry wait, the events' time to live and the 30 s response
    /// timeout (never below 1 s) by this factor, e.g. 0.001 in tests.
    #[arg(long, env = "ACS_EMULATOR_EVENT_RETRY_SCALE", default_value_t = 1.0, value_parser = positive_factor)]
    pub event_retry_scale: f64,

    /// Extra host name for the TLS certificate, e.g. a Compose service name (repeatable;
    /// the env twin takes a comma-separated list).
    #[arg(
        long = "hostname",
        env = "ACS_EMULATOR_HOSTNAMES",
        value_delimiter = ','
    )]
    pub hostnames: Vec<String>,

    /// Use this PEM certificate (chain) instead of the generated one; needs --tls-key.
    #[arg(long, env = "ACS_EMULATOR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "ACS_EMULATOR_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Base URL used in Location headers and nextLinks (default: the request's scheme and Host).
    #[arg(long, env = "ACS_EMULATOR_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Credential checking: strict (like the service) or lenient (accept any well-formed token).
    #[arg(long, env = "ACS_EMULATOR_AUTH", value_enum, default_value_t = AuthMode::Strict)]
    pub auth: AuthMode,

    /// With --auth strict, also accept Microsoft Entra ID bearer tokens on the identity API.
    /// The emulator cannot verify Entra's signatures offline, so it then trusts ANY
    /// well-formed, signed-looking (alg other than none, non-empty signature), unexpired JWT
    /// whose audience is https://communication.azure.com. Off by default; --auth lenient
    /// accepts such tokens anyway.
    #[arg(
        long,
        env = "ACS_EMULATOR_ACCEPT_ENTRA_TOKENS",
        default_value_t = false
    )]
    pub accept_entra_tokens: bool,

    /// Log format.
    #[arg(long, env = "ACS_EMULATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Serve unknown or missing api-versions as the newest stable one instead of answering 400.
    #[arg(long, env = "ACS_EMULATOR_LOOSE", default_value_t = false)]
    pub loose: bool,

    /// Apply the service's documented rate limits (429 with Retry-After), to test retry logic.
    #[arg(long, env = "ACS_EMULATOR_THROTTLE", default_value_t = false)]
    pub throttle: bool,

    /// Load this state document (as written by `export` or GET /_emulator/state) when the
    /// database is empty.
    #[arg(long = "import", env = "ACS_EMULATOR_IMPORT", conflicts_with = "seed")]
    pub import_file: Option<PathBuf>,

    /// Load this seed file (YAML or JSON: identities with fixed ids and tokens, threads,
    /// participants, messages) when the database is empty; its tokens are printed at start.
    #[arg(long, env = "ACS_EMULATOR_SEED")]
    pub seed: Option<PathBuf>,

    /// Seconds a client has to send a request's headers (HTTP/1.1, each request; also the
    /// first request on any connection, and so how long an HTTP/1.1 keep-alive connection may
    /// sit idle between requests). 30 s is hyper's and nginx's `client_header_timeout` figure.
    #[arg(
        long,
        env = "ACS_EMULATOR_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub header_read_timeout_secs: u64,

    /// Seconds a connection may move no bytes either way before it is closed (HTTP/2 between
    /// requests, a stalled body, a client that stops reading). 75 s outlasts the idle time of
    /// the SDKs' connection pools and matches nginx's `keepalive_timeout` default.
    #[arg(long, env = "ACS_EMULATOR_IDLE_TIMEOUT_SECS", default_value_t = 75)]
    pub idle_timeout_secs: u64,

    /// Seconds a client has to complete the TLS handshake on the HTTPS port.
    #[arg(
        long,
        env = "ACS_EMULATOR_TLS_HANDSHAKE_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub tls_handshake_timeout_secs: u64,

    /// Most connections served at once, both ports together; further connections are closed
    /// as soon as they are accepted (and a warning is logged) until one ends.
    #[arg(long, env = "ACS_EMULATOR_MAX_CONNECTIONS", default_value_t = 2048)]
    pub max_connections: usize,
}

/// A finite factor above 0 (`--event-retry-scale`).
fn positive_factor(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!("{text} is not a number above 0")),
    }
}

impl Config {
    /// A configuration for tests: what users get by default (state in `data_dir/emulator.db`,
    /// certificates beside it, strict auth), on loopback and free ports.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Config {
            https_port: 0,
            http_port: 0,
            bind: IpAddr::from([127, 0, 0, 1]),
            data_dir,
            in_memory: false,
            access_key: DEFAULT_ACCESS_KEY.to_owned(),
            resource_id: DEFAULT_RESOURCE_ID.to_owned(),
            resource_arm_id: DEFAULT_RESOURCE_ARM_ID.to_owned(),
            event_webhooks: Vec::new(),
            event_retry_scale: 1.0,
            hostnames: Vec::new(),
            tls_cert: None,
            tls_key: None,
            public_url: None,
            auth: AuthMode::Strict,
            accept_entra_tokens: false,
            log_format: LogFormat::Text,
            throttle: false,
            loose: false,
            import_file: None,
            seed: None,
            header_read_timeout_secs: 30,
            idle_timeout_secs: 75,
            tls_handshake_timeout_secs: 10,
            max_connections: 2048,
        }
    }
}
