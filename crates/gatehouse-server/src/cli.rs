//! The `gatehouse` command line. Every command that changes data works on the data directory
//! directly, so it can run while the server runs; the server notices within its refresh
//! interval.

pub mod doctor;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use gatehouse_core::admin::{self, Operator};
use gatehouse_core::audit::{AuditQuery, EventType, Outcome, Recorder};
use gatehouse_core::keys::SigningAlg;
use gatehouse_core::model::{Client, NewResource, RefreshPolicy, Resource, ScopeDef, User};
use gatehouse_core::password::Password;
use gatehouse_core::signin::{
    Available, Connection, ConnectionKind, GITHUB_SCOPES, Method, NewConnection, SignInPolicy,
    offered, parse_methods,
};
use gatehouse_core::store::{ConsentFilter, Store};
use gatehouse_core::{ClientId, Clock, Issuer, ResourceId, ResourceUri, ScopeSet, SystemClock};
use serde_json::json;

use crate::audit;
use crate::config::{Config, FlagOverrides};
use crate::serve::{BoxError, open_store};

const CONFIG_HELP: &str = "\
Configuration is layered: defaults, then gatehouse.toml (or --config), then GATEHOUSE_* \
environment variables, then flags. Unknown keys are rejected. Keys:
  listen               GATEHOUSE_LISTEN               address to listen on [127.0.0.1:9000]
  public_url           GATEHOUSE_PUBLIC_URL           root issuer URL [http://{listen}]
  data_dir             GATEHOUSE_DATA_DIR             database and keys [./gatehouse-data]
  database_url         GATEHOUSE_DATABASE_URL         postgres://… to use PostgreSQL instead of SQLite [unset]
  database_max_connections       PostgreSQL connections per node [16]
  log_format           GATEHOUSE_LOG_FORMAT           text | json [text]
  log_level            GATEHOUSE_LOG_LEVEL            tracing filter [info]
  refresh_interval_ms  GATEHOUSE_REFRESH_INTERVAL_MS  how often to pick up changes made by the CLI [1000]
  code_ttl_secs                  authorization code lifetime, at most 60 [60]
  refresh_token_ttl_secs         refresh token lifetime [2592000 = 30 days]
  refresh_grace_secs             identical retry of a used refresh token gets the same answer [10]
  session_idle_secs              sign-in session idle expiry [43200 = 12 h]
  session_max_secs               sign-in session absolute expiry [604800 = 7 days]
  registration_expiry_days       delete self-registered clients unused this long [30]
  unused_registration_expiry_hours  delete self-registered clients that never got a token [24]
  registrations_per_ip_per_hour  dynamic registrations per client IP [60]
  sign_in_failures_per_account   failed sign-ins per account per 15 min [5]
  sign_in_failures_per_ip        failed sign-ins per IP per 15 min [20]
  audit_retention_days           delete audit events older than this [90]
  key_publish_ahead_secs         a new signing key is published this long before it signs [86400]
  key_rotation_days              replace each signing key after this many days, 0 = never [90]
  metrics_token                  bearer token /metrics wants; unset = this machine only [unset]
  dev_loopback_metadata_documents  DEVELOPMENT ONLY: fetch client metadata documents on loopback [false]
Every key is also GATEHOUSE_<KEY> in upper case. See docs/configuration.md.";

/// Gatehouse: an OAuth 2.1 authorization server for MCP servers.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, long_about = None, after_help = CONFIG_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every command. Each can also be set in `gatehouse.toml` or as a
/// `GATEHOUSE_*` environment variable (see docs/configuration.md); flags win.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: ./gatehouse.toml, if it exists] [env: GATEHOUSE_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database and signing keys [default: ./gatehouse-data]
    /// [env: GATEHOUSE_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL instead of SQLite: postgres://user:password@host:5432/database
    /// [env: GATEHOUSE_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Public URL of this server: the root issuer, prefix of every per-MCP-server issuer
    /// [default: http://{listen}] [env: GATEHOUSE_PUBLIC_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the authorization server.
    Serve {
        /// Address to listen on [default: 127.0.0.1:9000] [env: GATEHOUSE_LISTEN]
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Register and manage MCP servers (protected resources).
    #[command(subcommand)]
    Servers(ServersCommand),
    /// Manage OAuth clients of MCP servers.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage the people who sign in (local accounts).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Keys to the admin API.
    #[command(subcommand)]
    ApiKeys(ApiKeysCommand),
    /// See and withdraw what people allowed clients to do.
    #[command(subcommand)]
    Consents(ConsentsCommand),
    /// The keys that sign access tokens, and their rotation.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The sign-in methods every MCP server offers unless it names its own.
    #[command(subcommand)]
    SignIn(SignInCommand),
    /// Connections: other systems that sign people in (bring your own auth).
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// Read the audit log, newest first; every filter narrows.
    Audit(AuditArgs),
    /// Check an MCP server as a host would before signing in: the 401 challenge, Protected
    /// Resource Metadata, the authorization server's metadata at every URL hosts try, the
    /// JWKS, and registration. Prints ✓/✗ with what to change; exits non-zero on any ✗.
    Doctor {
        /// The URL hosts are given, e.g. https://mcp.example.com/mcp.
        #[arg(value_name = "URL")]
        url: String,
        /// The issuer the MCP server must name (default: the first it names).
        #[arg(long, value_name = "ISSUER")]
        authorization_server: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Apply the database schema migrations this version has and the database lacks. For
    /// rolling upgrades: run it with the new version, then restart nodes one by one (with
    /// auto_migrate = false they never migrate themselves).
    Migrate {
        /// Only name the pending migrations; fail if there are any.
        #[arg(long)]
        check: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Copy the SQLite database, consistently, while the server runs (PostgreSQL: pg_dump).
    Backup {
        /// The file to write; it must not exist.
        #[arg(value_name = "FILE")]
        to: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Try it: run Gatehouse and a protected to-do MCP server with an agent client, and print
    /// what to do next. Uses a temporary data directory unless --data-dir is given.
    Demo {
        /// Address of the authorization server [default: 127.0.0.1:9000]
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Address of the to-do MCP server.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9001")]
        mcp_listen: std::net::SocketAddr,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// Register an MCP server; prints its id, issuer and Protected Resource Metadata.
    Add {
        /// Name shown to people on consent.
        #[arg(long)]
        name: String,
        /// The MCP server's URL (e.g. https://mcp.example.com/mcp): the token audience.
        #[arg(long)]
        url: String,
        /// A scope it offers, as NAME or NAME=DESCRIPTION; repeat for more.
        #[arg(long = "scope", value_name = "NAME[=DESCRIPTION]")]
        scopes: Vec<String>,
        /// Access-token lifetime in seconds (60 to 86400).
        #[arg(long, value_name = "SECONDS", default_value_t = gatehouse_core::model::DEFAULT_TOKEN_TTL)]
        token_ttl: u32,
        /// Signing algorithm of its access tokens: RS256 (Scalekit SDK compatible), ES256 or EdDSA.
        #[arg(long, default_value = "RS256", value_parser = parse_alg)]
        alg: SigningAlg,
        /// When people's clients get refresh tokens: always, offline-access (when they ask
        /// for the offline_access scope) or never.
        #[arg(long, value_name = "POLICY", default_value = "offline-access", value_parser = parse_refresh)]
        refresh_tokens: RefreshPolicy,
        /// Whether clients may register themselves (RFC 7591): on or off.
        #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_switch)]
        dynamic_registration: bool,
        /// Whether Client ID Metadata Documents (URL client ids) are accepted: on or off.
        #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_switch)]
        metadata_documents: bool,
        /// Whether native apps may use private-use scheme redirect URIs (cursor://…,
        /// claude://…, com.example.app:/…): on or off.
        #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_switch)]
        private_use_redirects: bool,
        /// The sign-in methods it offers, comma-separated, in order: password, email_code,
        /// passkey, conn_… ; `default` for the defaults (`gatehouse sign-in show`).
        #[arg(long, value_name = "METHODS", default_value = "default", value_parser = parse_sign_in)]
        sign_in: SignInMethods,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List MCP servers.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one MCP server.
    Show {
        /// The server id (res_…).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change an MCP server; what is not given stays as it is.
    Update {
        /// The server id (res_…).
        id: String,
        /// Name shown to people on consent.
        #[arg(long)]
        name: Option<String>,
        /// The MCP server's URL: the token audience.
        #[arg(long)]
        url: Option<String>,
        /// Its scopes, replacing all of them: NAME or NAME=DESCRIPTION; repeat for more.
        #[arg(long = "scope", value_name = "NAME[=DESCRIPTION]")]
        scopes: Vec<String>,
        /// Access-token lifetime in seconds (60 to 86400).
        #[arg(long, value_name = "SECONDS")]
        token_ttl: Option<u32>,
        /// Signing algorithm: RS256, ES256 or EdDSA.
        #[arg(long, value_parser = parse_alg)]
        alg: Option<SigningAlg>,
        /// always, offline-access or never.
        #[arg(long, value_name = "POLICY", value_parser = parse_refresh)]
        refresh_tokens: Option<RefreshPolicy>,
        /// on or off.
        #[arg(long, value_name = "on|off", value_parser = parse_switch)]
        dynamic_registration: Option<bool>,
        /// on or off.
        #[arg(long, value_name = "on|off", value_parser = parse_switch)]
        metadata_documents: Option<bool>,
        /// Private-use scheme redirect URIs of native apps: on or off.
        #[arg(long, value_name = "on|off", value_parser = parse_switch)]
        private_use_redirects: Option<bool>,
        /// The sign-in methods it offers, comma-separated, in order (password, email_code,
        /// passkey, conn_…), or `default`.
        #[arg(long, value_name = "METHODS", value_parser = parse_sign_in)]
        sign_in: Option<SignInMethods>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove an MCP server and all its clients.
    Remove {
        /// The server id (res_…).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// An MCP server's sign-in methods as typed: `None` for the defaults.
#[derive(Debug, Clone)]
pub struct SignInMethods(Option<Vec<Method>>);

fn parse_sign_in(s: &str) -> Result<SignInMethods, String> {
    if s.trim() == "default" {
        return Ok(SignInMethods(None));
    }
    parse_methods(s.split(',').filter(|m| !m.trim().is_empty()))
        .map(|m| SignInMethods(Some(m)))
        .map_err(|e| e.0)
}

#[derive(Debug, Subcommand)]
pub enum SignInCommand {
    /// Show the default sign-in methods.
    Show {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Turn built-in methods on or off for every MCP server without its own list; what is
    /// not given stays as it is.
    Set {
        /// on or off.
        #[arg(long, value_name = "on|off", value_parser = parse_switch)]
        password: Option<bool>,
        /// on or off (offered only when email delivery is configured).
        #[arg(long, value_name = "on|off", value_parser = parse_switch)]
        email_code: Option<bool>,
        /// on or off.
        #[arg(long, value_name = "on|off", value_parser = parse_switch)]
        passkey: Option<bool>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Add a bring-your-own-auth connection: your login page signs people in and your
    /// backend posts their claims to Gatehouse. Prints the endpoints your code calls.
    AddFederated {
        /// Shown on the sign-in button ("Continue with NAME").
        #[arg(long)]
        name: String,
        /// Your login page; Gatehouse sends the browser there with login_request_id and state.
        #[arg(long, value_name = "URL")]
        login_url: String,
        /// Only accept people whose email is in this domain; repeat for more.
        #[arg(long = "domain", value_name = "DOMAIN")]
        domains: Vec<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Add an identity provider: OpenID Connect (Google, Microsoft Entra ID, Okta, any
    /// other), or GitHub (--preset github: plain OAuth and its user API). Register the printed
    /// redirect URI for the client at the provider.
    AddOidc {
        /// Shown on the sign-in button ("Continue with NAME").
        #[arg(long)]
        name: String,
        /// A well-known provider: google, entra (needs --tenant), okta (needs --tenant),
        /// github (--tenant for a GitHub Enterprise Server; needs the client secret).
        #[arg(long, conflicts_with = "issuer")]
        preset: Option<String>,
        /// The Entra tenant id, the Okta domain (acme.okta.com), or the GitHub Enterprise
        /// Server (github.example.com).
        #[arg(long)]
        tenant: Option<String>,
        /// Any other provider's issuer URL (discovery at ISSUER/.well-known/openid-configuration).
        #[arg(long, value_name = "URL")]
        issuer: Option<String>,
        /// Gatehouse's client id at the provider.
        #[arg(long)]
        client_id: String,
        /// Read the client secret from the first line of standard input (without it: a
        /// public client, PKCE only).
        #[arg(long)]
        client_secret_stdin: bool,
        /// A scope to ask for; repeat (default: openid email profile). GitHub is always asked
        /// for read:user user:email.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Only accept people whose email is in this domain; repeat for more.
        #[arg(long = "domain", value_name = "DOMAIN")]
        domains: Vec<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List connections.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one connection.
    Show {
        /// The connection id (conn_…).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a connection; what is not given stays as it is.
    Update {
        /// The connection id (conn_…).
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// A federated connection's login page.
        #[arg(long, value_name = "URL")]
        login_url: Option<String>,
        /// An identity provider's new client secret (after rotating it there), read from the
        /// first line of standard input.
        #[arg(long, conflicts_with = "login_url")]
        client_secret_stdin: bool,
        /// Replaces the allowed email domains; repeat for more.
        #[arg(long = "domain", value_name = "DOMAIN")]
        domains: Vec<String>,
        /// Accept any email domain again.
        #[arg(long, conflicts_with = "domains")]
        any_domain: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Offer a connection again.
    Enable {
        /// The connection id (conn_…).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Stop offering a connection; sign-ins through it are refused.
    Disable {
        /// The connection id (conn_…).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove a connection and the identities linked through it (the people stay).
    Remove {
        /// The connection id (conn_…).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Create an agent client (client credentials); prints its secret once, or, with
    /// --jwks-uri or --jwks-file, has it sign assertions with its own key (private_key_jwt).
    Add {
        /// The MCP server it gets tokens for (res_…).
        #[arg(long, value_name = "ID")]
        server: String,
        /// A name for it.
        #[arg(long)]
        name: String,
        /// A scope it may request; repeat for more. Each must be offered by the server.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// The https URL of its public JWK Set: it authenticates with private_key_jwt.
        #[arg(long, value_name = "URL", conflicts_with = "jwks_file")]
        jwks_uri: Option<String>,
        /// A file holding its public JWK Set: it authenticates with private_key_jwt.
        #[arg(long, value_name = "FILE")]
        jwks_file: Option<std::path::PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        /// Only those of this MCP server (res_…).
        #[arg(long, value_name = "ID")]
        server: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a client; its tokens stop introspecting as active, and guards refuse them
    /// within their revocation poll interval.
    Remove {
        /// The client id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Give an agent client a new secret (printed once); the old one stops working at once.
    RotateSecret {
        /// The client id (m2m_…).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Disable a client: it gets no tokens, and every token it holds is revoked. Its
    /// consents stay.
    Disable {
        /// The client id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Enable a disabled client again (tokens revoked by disabling it stay revoked).
    Enable {
        /// The client id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConsentsCommand {
    /// List what people allowed which clients; every filter narrows.
    List {
        /// Only consents at this MCP server (res_…).
        #[arg(long, value_name = "ID")]
        server: Option<String>,
        /// Only consents given to this client.
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
        /// Only this person's (usr_… or email).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a consent: every token issued from it is revoked and the person is asked
    /// again next time.
    Revoke {
        /// The person (usr_… or email).
        #[arg(long, value_name = "USER")]
        user: String,
        /// The client.
        #[arg(long, value_name = "CLIENT_ID")]
        client: String,
        /// The MCP server (res_…).
        #[arg(long, value_name = "ID")]
        server: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a person who signs in with an email and a password. Without
    /// --password-stdin a strong password is generated and printed once.
    Add {
        /// Their email address (what they sign in with).
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Make them an administrator (dashboard and admin API).
        #[arg(long)]
        admin: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List people.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a person: their sessions and consents go, and every token issued on their
    /// behalf is revoked.
    Remove {
        /// Their id (usr_…) or email.
        user: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Make a person an administrator (on) or not (off).
    SetAdmin {
        /// Their id (usr_…) or email.
        user: String,
        /// on or off.
        #[arg(value_name = "on|off", value_parser = parse_switch, action = clap::ArgAction::Set)]
        admin: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Disable a person: they cannot sign in, their sessions end and every token issued on
    /// their behalf is revoked. Their consents stay.
    Disable {
        /// Their id (usr_…) or email.
        user: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Let a disabled person sign in again.
    Enable {
        /// Their id (usr_…) or email.
        user: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Give a person a new password; their sessions end. Without --password-stdin a
    /// strong password is generated and printed once.
    ResetPassword {
        /// Their id (usr_…) or email.
        user: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List a person's sign-in sessions, most recently used first.
    Sessions {
        /// Their id (usr_…) or email.
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// End a person's sessions (all, or one with --session): they sign in again.
    EndSessions {
        /// Their id (usr_…) or email.
        user: String,
        /// Only this session (ses_…, as `users sessions` lists it).
        #[arg(long, value_name = "ID")]
        session: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys: next (published, not signing yet), active (signing), retired
    /// (published until the tokens it signed expire) and expired.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rotate now: publish a new key that signs after key_publish_ahead_secs; the key it
    /// replaces stays published until every token it signed has expired.
    Rotate {
        /// Only this algorithm (RS256, ES256 or EdDSA); every one in use without it.
        #[arg(long, value_parser = parse_alg)]
        alg: Option<SigningAlg>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create a key to the admin API (/admin/api/v1) acting as an administrator; the
    /// secret is printed once.
    Create {
        /// The administrator it acts as (usr_… or email).
        #[arg(long, value_name = "USER")]
        user: String,
        /// What it is for.
        #[arg(long)]
        name: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List API keys (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key.
    Revoke {
        /// The key id (key_…).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this event type; repeat for more (token.issued, token.refused, token.revoked,
    /// authorization.granted, authorization.denied, consent.granted, consent.revoked,
    /// client.registered, client.registration_refused, client.deleted,
    /// metadata_document.failed, sign_in.succeeded, sign_in.failed, sign_out, admin.change,
    /// key.rotated, identity.linked, sign_in.code_sent, passkey.added, passkey.removed).
    #[arg(long = "event", value_name = "EVENT", value_parser = parse_event)]
    events: Vec<EventType>,
    /// Only events about this MCP server (res_…).
    #[arg(long, value_name = "ID")]
    server: Option<String>,
    /// Only events about this client.
    #[arg(long, value_name = "CLIENT_ID")]
    client: Option<String>,
    /// Only events about this person (usr_… or email).
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Only successes or only failures.
    #[arg(long, value_name = "success|failure", value_parser = parse_outcome)]
    outcome: Option<Outcome>,
    /// From this time: Unix seconds, RFC 3339, or a span back such as 24h or 7d.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only events older than this sequence number (the last one of the previous page).
    #[arg(long, value_name = "SEQ")]
    before: Option<i64>,
    /// At most this many events (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
    /// table, json, jsonl (one object per line) or csv.
    #[arg(long, default_value = "table", value_parser = audit::Format::parse)]
    format: audit::Format,
    /// Print JSON (the same as --format json).
    #[arg(long)]
    json: bool,
}

fn parse_event(s: &str) -> Result<EventType, String> {
    EventType::parse(s).ok_or_else(|| {
        let all: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
        format!("`{s}` is not an event type; they are: {}", all.join(", "))
    })
}

fn parse_outcome(s: &str) -> Result<Outcome, String> {
    Outcome::parse(s).ok_or_else(|| format!("`{s}` is not success or failure"))
}

fn parse_refresh(s: &str) -> Result<RefreshPolicy, String> {
    RefreshPolicy::parse(s)
        .ok_or_else(|| format!("`{s}` is not one of always, offline-access, never"))
}

fn parse_switch(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("`{s}` is not on or off")),
    }
}

fn parse_alg(s: &str) -> Result<SigningAlg, String> {
    SigningAlg::parse(s).ok_or_else(|| format!("`{s}` is not one of RS256, ES256, EdDSA"))
}

impl Cli {
    /// The configuration these arguments select, with the process environment.
    pub fn config(&self) -> Result<Config, BoxError> {
        let listen = match &self.command {
            Command::Serve { listen } | Command::Demo { listen, .. } => *listen,
            _ => None,
        };
        let flags = FlagOverrides {
            listen,
            public_url: self.global.public_url.clone(),
            data_dir: self.global.data_dir.clone(),
            database_url: self.global.database_url.clone(),
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        let file = self
            .global
            .config
            .clone()
            .or_else(|| std::env::var_os("GATEHOUSE_CONFIG").map(PathBuf::from));
        Ok(Config::load(file.as_deref(), &env, &flags)?)
    }
}

/// Runs an administrative command and returns what to print. The changes it makes are
/// recorded in the audit log as made by `cli`, also when the command fails half-way.
pub async fn run_admin(command: Command, config: &Config) -> Result<String, BoxError> {
    let store = open_store(config).await?;
    let store = store.as_ref();
    let recorder = Recorder::default();
    let op = Operator::new(store, &recorder, "cli", SystemClock.now())
        .with_dev_loopback(config.dev_loopback_metadata_documents);
    let out = run_command(command, config, store, &op).await;
    let stored = store.append_audit(&recorder.events()).await;
    store.close().await;
    stored?;
    out
}

async fn run_command(
    command: Command,
    config: &Config,
    store: &dyn Store,
    op: &Operator<'_>,
) -> Result<String, BoxError> {
    let public = config.public_issuer()?;
    let now = SystemClock.now();
    let out = match command {
        Command::Serve { .. }
        | Command::Demo { .. }
        | Command::Migrate { .. }
        | Command::Backup { .. }
        | Command::Doctor { .. } => {
            return Err("serve, demo, migrate and backup are not administrative commands".into());
        }
        Command::Servers(ServersCommand::Add {
            name,
            url,
            scopes,
            token_ttl,
            alg,
            refresh_tokens,
            dynamic_registration,
            metadata_documents,
            private_use_redirects,
            sign_in,
            json,
        }) => {
            let scopes = scopes
                .iter()
                .map(|s| ScopeDef::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.0)?;
            let url = ResourceUri::parse(&url).map_err(|e| format!("--url: {}", e.0))?;
            let mut new = NewResource::new(name, url, scopes);
            new.token_ttl = Some(token_ttl);
            new.signing_alg = Some(alg);
            new.refresh_tokens = Some(refresh_tokens);
            new.dynamic_registration = Some(dynamic_registration);
            new.metadata_documents = Some(metadata_documents);
            new.private_use_redirects = Some(private_use_redirects);
            new.sign_in_methods = sign_in.0;
            let r = op.register_resource(new).await?;
            if json {
                pretty(&resource_json(&r, &public))
            } else {
                resource_text(&r, &public, true)
            }
        }
        Command::Servers(ServersCommand::List { json }) => {
            let list = gatehouse_core::store::ResourceStore::resources(store).await?;
            if json {
                pretty(&json!(
                    list.iter()
                        .map(|r| resource_json(r, &public))
                        .collect::<Vec<_>>()
                ))
            } else if list.is_empty() {
                "No MCP servers yet. Register one with `gatehouse servers add`.".to_owned()
            } else {
                table(
                    &["ID", "NAME", "URL"],
                    list.iter()
                        .map(|r| vec![r.id.to_string(), r.name.clone(), r.url.to_string()]),
                )
            }
        }
        Command::Servers(ServersCommand::Show { id, json }) => {
            let r = admin::resource(store, &id).await?;
            if json {
                pretty(&resource_json(&r, &public))
            } else {
                resource_text(&r, &public, false)
            }
        }
        Command::Servers(ServersCommand::Update {
            id,
            name,
            url,
            scopes,
            token_ttl,
            alg,
            refresh_tokens,
            dynamic_registration,
            metadata_documents,
            private_use_redirects,
            sign_in,
            json,
        }) => {
            let change = admin::ResourceChange {
                name,
                url: url
                    .as_deref()
                    .map(ResourceUri::parse)
                    .transpose()
                    .map_err(|e| format!("--url: {}", e.0))?,
                scopes: if scopes.is_empty() {
                    None
                } else {
                    Some(
                        scopes
                            .iter()
                            .map(|s| ScopeDef::parse(s))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| e.0)?,
                    )
                },
                token_ttl,
                signing_alg: alg,
                refresh_tokens,
                dynamic_registration,
                metadata_documents,
                private_use_redirects,
                sign_in_methods: sign_in.map(|m| m.0),
            };
            let r = op.update_resource(&id, change).await?;
            if json {
                pretty(&resource_json(&r, &public))
            } else {
                resource_text(&r, &public, false)
            }
        }
        Command::Servers(ServersCommand::Remove { id, json }) => {
            op.remove_resource(&id).await?;
            done(json, json!({"removed": id}), || {
                format!("Removed MCP server {id} and its clients.")
            })
        }
        Command::Clients(ClientsCommand::Add {
            server,
            name,
            scopes,
            jwks_uri,
            jwks_file,
            json,
        }) => {
            let scopes: ScopeSet = ScopeSet::parse(&scopes.join(" ")).map_err(|e| e.0)?;
            let keys = match (jwks_uri, jwks_file) {
                (Some(uri), _) => Some(json!({ "jwks_uri": uri })),
                (None, Some(file)) => {
                    let text = std::fs::read_to_string(&file)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    let set: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|e| format!("{} is not JSON: {e}", file.display()))?;
                    Some(json!({ "jwks": set }))
                }
                (None, None) => None,
            };
            let resource = admin::resource(store, &server).await?;
            let token_endpoint = resource
                .issuer(&public)
                .join(gatehouse_core::metadata::paths::TOKEN);
            if let Some(keys) = keys {
                let client = op
                    .create_agent_client_with_keys(&server, &name, scopes, keys)
                    .await?;
                return Ok(if json {
                    let mut v = client_json(&client);
                    v["token_endpoint"] = token_endpoint.as_str().into();
                    v["issuer"] = resource.issuer(&public).as_str().into();
                    pretty(&v)
                } else {
                    format!(
                        "Created agent client \"{}\" for {} ({}).\n\n  client_id:  {}\n  scopes:     {}\n  signs with: private_key_jwt (RS256, PS256, ES256 or EdDSA)\n\nGet a token: POST grant_type=client_credentials to {}\nwith client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer\nand a client_assertion signed by its key: iss and sub {}, aud {}, a jti, exp at most 5 minutes ahead.",
                        client.name,
                        resource.name,
                        resource.id,
                        client.id,
                        none_if_empty(&client.scopes.to_param()),
                        token_endpoint,
                        client.id,
                        resource.issuer(&public).as_str(),
                    )
                });
            }
            let (client, secret) = op.create_agent_client(&server, &name, scopes).await?;
            if json {
                let mut v = client_json(&client);
                v["client_secret"] = secret.expose_secret().into();
                v["token_endpoint"] = token_endpoint.into();
                v["issuer"] = resource.issuer(&public).as_str().into();
                pretty(&v)
            } else {
                format!(
                    "Created agent client \"{}\" for {} ({}).\n\n  client_id:     {}\n  client_secret: {}\n  scopes:        {}\n\nThe secret is shown once: store it now.\n\nGet a token:\n  curl -s -u '{}:{}' -d grant_type=client_credentials {}",
                    client.name,
                    resource.name,
                    resource.id,
                    client.id,
                    secret.expose_secret(),
                    none_if_empty(&client.scopes.to_param()),
                    client.id,
                    secret.expose_secret(),
                    token_endpoint
                )
            }
        }
        Command::Clients(ClientsCommand::List { server, json }) => {
            let filter = server
                .as_deref()
                .map(ResourceId::parse)
                .transpose()
                .map_err(|e| format!("--server: {}", e.0))?;
            let list = gatehouse_core::store::ClientStore::clients(store, filter.as_ref()).await?;
            if json {
                pretty(&json!(list.iter().map(client_json).collect::<Vec<_>>()))
            } else if list.is_empty() {
                "No clients yet. Create one with `gatehouse clients add`.".to_owned()
            } else {
                table(
                    &["CLIENT ID", "KIND", "SERVER", "NAME", "STATE", "SCOPES"],
                    list.iter().map(|c| {
                        vec![
                            c.id.to_string(),
                            c.kind.as_str().to_owned(),
                            c.resource
                                .as_ref()
                                .map_or("(any)", |r| r.as_str())
                                .to_owned(),
                            c.name.clone(),
                            enabled(c.disabled_at).to_owned(),
                            c.scopes.to_string(),
                        ]
                    }),
                )
            }
        }
        Command::Clients(ClientsCommand::Remove { id, json }) => {
            op.remove_client(&id).await?;
            done(json, json!({"removed": id}), || {
                format!("Removed client {id}; every token issued to it is revoked.")
            })
        }
        Command::Clients(ClientsCommand::RotateSecret { id, json }) => {
            let (client, secret) = op.rotate_client_secret(&id).await?;
            if json {
                let mut v = client_json(&client);
                v["client_secret"] = secret.expose_secret().into();
                pretty(&v)
            } else {
                format!(
                    "New secret for {} (\"{}\"):\n\n  client_secret: {}\n\nThe secret is shown once: store it now. The old one no longer works.",
                    client.id,
                    client.name,
                    secret.expose_secret()
                )
            }
        }
        Command::Clients(ClientsCommand::Disable { id, json }) => {
            let c = op.set_client_disabled(&id, true).await?;
            done(json, client_json(&c), || {
                format!(
                    "Disabled client {} (\"{}\"): it gets no tokens, and every token it held is revoked.",
                    c.id, c.name
                )
            })
        }
        Command::Clients(ClientsCommand::Enable { id, json }) => {
            let c = op.set_client_disabled(&id, false).await?;
            done(json, client_json(&c), || {
                format!("Enabled client {} (\"{}\").", c.id, c.name)
            })
        }
        Command::Users(UsersCommand::Disable { user, json }) => {
            let u = op.set_user_disabled(&user, true).await?;
            done(json, user_json(&u), || {
                format!(
                    "Disabled {} ({}): they cannot sign in, their sessions ended and their tokens are revoked.",
                    u.email, u.id
                )
            })
        }
        Command::Users(UsersCommand::Enable { user, json }) => {
            let u = op.set_user_disabled(&user, false).await?;
            done(json, user_json(&u), || {
                format!("{} ({}) can sign in again.", u.email, u.id)
            })
        }
        Command::Users(UsersCommand::ResetPassword {
            user,
            password_stdin,
            json,
        }) => {
            let (password, generated) = password_from(password_stdin)?;
            let u = op.reset_password(&user, password.hash()).await?;
            if json {
                let mut v = user_json(&u);
                if generated {
                    v["password"] = password.expose_secret().into();
                }
                pretty(&v)
            } else if generated {
                format!(
                    "New password for {} ({}); their sessions ended.\n\n  password: {}\n\nThe password is shown once: give it to them now.",
                    u.email,
                    u.id,
                    password.expose_secret()
                )
            } else {
                format!(
                    "New password set for {} ({}); their sessions ended.",
                    u.email, u.id
                )
            }
        }
        Command::Users(UsersCommand::Sessions { user, json }) => {
            let list = admin::sessions(store, &user).await?;
            if json {
                pretty(&json!(
                    list.iter()
                        .map(|x| json!({
                            "id": x.id(),
                            "created_at": x.created_at,
                            "last_seen_at": x.last_seen_at,
                        }))
                        .collect::<Vec<_>>()
                ))
            } else if list.is_empty() {
                format!("{user} is not signed in anywhere.")
            } else {
                table(
                    &["SESSION", "SIGNED IN", "LAST SEEN"],
                    list.iter().map(|x| {
                        vec![
                            x.id(),
                            audit::rfc3339(x.created_at),
                            audit::rfc3339(x.last_seen_at),
                        ]
                    }),
                )
            }
        }
        Command::Users(UsersCommand::EndSessions {
            user,
            session,
            json,
        }) => {
            let ended = op.end_sessions(&user, session.as_deref()).await?;
            done(json, json!({ "ended": ended }), || {
                format!("Ended {ended} session(s) of {user}.")
            })
        }
        Command::Users(UsersCommand::SetAdmin {
            user,
            admin: on,
            json,
        }) => {
            let u = op.set_admin(&user, on).await?;
            done(json, user_json(&u), || {
                if on {
                    format!("{} ({}) is an administrator.", u.email, u.id)
                } else {
                    format!(
                        "{} ({}) is no longer an administrator; their API keys stop working.",
                        u.email, u.id
                    )
                }
            })
        }
        Command::ApiKeys(ApiKeysCommand::Create { user, name, json }) => {
            let (key, secret) = op.create_api_key(&user, &name).await?;
            if json {
                let mut v = api_key_json(&key);
                v["secret"] = secret.expose_secret().into();
                pretty(&v)
            } else {
                format!(
                    "Created API key {} (\"{}\") acting as {}.\n\n  secret: {}\n\nThe secret is shown once: store it now. Use it as a bearer token:\n  curl -H 'Authorization: Bearer {}' {}/admin/api/v1/servers",
                    key.id,
                    key.name,
                    user,
                    secret.expose_secret(),
                    secret.expose_secret(),
                    public
                )
            }
        }
        Command::ApiKeys(ApiKeysCommand::List { json }) => {
            let keys = gatehouse_core::store::ApiKeyStore::api_keys(store).await?;
            if json {
                pretty(&json!(keys.iter().map(api_key_json).collect::<Vec<_>>()))
            } else if keys.is_empty() {
                "No API keys yet. Create one with `gatehouse api-keys create --user EMAIL --name NAME`.".to_owned()
            } else {
                table(
                    &["KEY ID", "NAME", "USER", "STATE"],
                    keys.iter().map(|k| {
                        let state = if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        vec![
                            k.id.to_string(),
                            k.name.clone(),
                            k.user.to_string(),
                            state.to_owned(),
                        ]
                    }),
                )
            }
        }
        Command::ApiKeys(ApiKeysCommand::Revoke { id, json }) => {
            op.revoke_api_key(&id).await?;
            done(json, json!({"revoked": id}), || {
                format!("Revoked API key {id}.")
            })
        }
        Command::Consents(ConsentsCommand::List {
            server,
            client,
            user,
            json,
        }) => {
            let filter = ConsentFilter {
                user: match user {
                    Some(u) => Some(admin::user(store, &u).await?.id),
                    None => None,
                },
                client: client
                    .as_deref()
                    .map(ClientId::parse)
                    .transpose()
                    .map_err(|e| format!("--client: {}", e.0))?,
                resource: server
                    .as_deref()
                    .map(ResourceId::parse)
                    .transpose()
                    .map_err(|e| format!("--server: {}", e.0))?,
            };
            let list = admin::consents(store, &filter).await?;
            if json {
                pretty(&json!(
                    list.iter()
                        .map(|c| json!({
                            "user": c.user,
                            "client_id": c.client,
                            "server": c.resource,
                            "scopes": c.scopes.to_vec(),
                            "granted_at": c.granted_at,
                        }))
                        .collect::<Vec<_>>()
                ))
            } else if list.is_empty() {
                "No consents match.".to_owned()
            } else {
                table(
                    &["USER", "CLIENT", "SERVER", "GRANTED", "SCOPES"],
                    list.iter().map(|c| {
                        vec![
                            c.user.to_string(),
                            c.client.to_string(),
                            c.resource.to_string(),
                            audit::rfc3339(c.granted_at),
                            c.scopes.to_string(),
                        ]
                    }),
                )
            }
        }
        Command::Consents(ConsentsCommand::Revoke {
            user,
            client,
            server,
            json,
        }) => {
            let (u, c, r) = op.revoke_consent(&user, &client, &server).await?;
            done(
                json,
                json!({"revoked": {"user": u, "client_id": c, "server": r}}),
                || {
                    format!(
                        "Revoked the consent of {user} for {client} at {server}: its tokens are revoked and they will be asked again."
                    )
                },
            )
        }
        Command::Users(UsersCommand::Add {
            email,
            password_stdin,
            admin,
            json,
        }) => {
            let (password, generated) = password_from(password_stdin)?;
            let user = op.create_user(&email, &password, admin).await?;
            if json {
                let mut v = user_json(&user);
                if generated {
                    v["password"] = password.expose_secret().into();
                }
                pretty(&v)
            } else if generated {
                format!(
                    "Created user {} ({}).\n\n  password: {}\n\nThe password is shown once: give it to them now.",
                    user.email,
                    user.id,
                    password.expose_secret()
                )
            } else {
                format!("Created user {} ({}).", user.email, user.id)
            }
        }
        Command::Users(UsersCommand::List { json }) => {
            let list = gatehouse_core::store::UserStore::users(store).await?;
            if json {
                pretty(&json!(list.iter().map(user_json).collect::<Vec<_>>()))
            } else if list.is_empty() {
                "No users yet. Create one with `gatehouse users add --email EMAIL`.".to_owned()
            } else {
                table(
                    &["USER ID", "EMAIL", "ROLE", "STATE"],
                    list.iter().map(|u| {
                        let role = if u.admin { "admin" } else { "" };
                        vec![
                            u.id.to_string(),
                            u.email.clone(),
                            role.to_owned(),
                            enabled(u.disabled_at).to_owned(),
                        ]
                    }),
                )
            }
        }
        Command::Users(UsersCommand::Remove { user, json }) => {
            let u = op.remove_user(&user).await?;
            done(json, json!({"removed": u.id}), || {
                format!(
                    "Removed user {} ({}); their sessions ended and every token issued on their behalf is revoked.",
                    u.email, u.id
                )
            })
        }
        Command::Keys(KeysCommand::List { json }) => {
            let keys = admin::signing_keys(store, now).await?;
            if json {
                pretty(&json!(keys.iter().map(key_json).collect::<Vec<_>>()))
            } else if keys.is_empty() {
                "No signing keys yet: one is made when the first MCP server is registered."
                    .to_owned()
            } else {
                key_table(&keys)
            }
        }
        Command::Keys(KeysCommand::Rotate { alg, json }) => {
            let made = op
                .rotate_keys(alg, i64::from(config.key_publish_ahead_secs))
                .await?;
            let states = gatehouse_core::keys::key_states(&made, now);
            if json {
                pretty(&json!(states.iter().map(key_json).collect::<Vec<_>>()))
            } else {
                format!(
                    "Published the next key; it signs from the time shown, and the key it replaces stays published until its tokens expire.\n\n{}",
                    key_table(&states)
                )
            }
        }
        Command::SignIn(SignInCommand::Show { json }) => {
            sign_in_output(store, config, json).await?
        }
        Command::SignIn(SignInCommand::Set {
            password,
            email_code,
            passkey,
            json,
        }) => {
            let old = admin::sign_in_policy(store).await?;
            op.set_sign_in_policy(SignInPolicy {
                password: password.unwrap_or(old.password),
                email_code: email_code.unwrap_or(old.email_code),
                passkey: passkey.unwrap_or(old.passkey),
            })
            .await?;
            sign_in_output(store, config, json).await?
        }
        Command::Connections(ConnectionsCommand::AddFederated {
            name,
            login_url,
            domains,
            json,
        }) => {
            let c = op
                .create_connection(NewConnection {
                    name,
                    kind: ConnectionKind::Federated { login_url },
                    allowed_domains: domains,
                })
                .await?;
            connection_output(&c, &public, json, "Added connection")
        }
        Command::Connections(ConnectionsCommand::AddOidc {
            name,
            preset,
            tenant,
            issuer,
            client_id,
            client_secret_stdin,
            scopes,
            domains,
            json,
        }) => {
            let secret = if client_secret_stdin {
                read_line("the client secret")?
            } else {
                String::new()
            };
            let kind = ConnectionKind::provider(
                preset.as_deref(),
                tenant.as_deref(),
                issuer.as_deref(),
                &client_id,
                &secret,
                scopes,
            )
            .map_err(|e| e.0)?;
            let c = op
                .create_connection(NewConnection {
                    name,
                    kind,
                    allowed_domains: domains,
                })
                .await?;
            connection_output(&c, &public, json, "Added connection")
        }
        Command::Connections(ConnectionsCommand::List { json }) => {
            let list = gatehouse_core::store::SignInStore::connections(store).await?;
            if json {
                pretty(&json!(
                    list.iter()
                        .map(|c| connection_json(c, &public))
                        .collect::<Vec<_>>()
                ))
            } else if list.is_empty() {
                "No connections yet. Add one with `gatehouse connections add-federated`.".to_owned()
            } else {
                table(
                    &["ID", "NAME", "KIND", "STATE", "DOMAINS"],
                    list.iter().map(|c| {
                        vec![
                            c.id.to_string(),
                            c.name.clone(),
                            c.kind.name().to_owned(),
                            if c.enabled { "enabled" } else { "disabled" }.to_owned(),
                            if c.allowed_domains.is_empty() {
                                "any".to_owned()
                            } else {
                                c.allowed_domains.join(", ")
                            },
                        ]
                    }),
                )
            }
        }
        Command::Connections(ConnectionsCommand::Show { id, json }) => {
            let c = admin::connection(store, &id).await?;
            connection_output(&c, &public, json, "Connection")
        }
        Command::Connections(ConnectionsCommand::Update {
            id,
            name,
            login_url,
            client_secret_stdin,
            domains,
            any_domain,
            json,
        }) => {
            let kind = if client_secret_stdin {
                let mut kind = admin::connection(store, &id).await?.kind;
                let Some(secret) = kind.client_secret_mut() else {
                    return Err(format!(
                        "connection {id} is a {} connection: only identity providers (oidc, github) have a client secret",
                        kind.name()
                    )
                    .into());
                };
                *secret = read_line("the client secret")?;
                Some(kind)
            } else {
                // Only for a federated connection: the core refuses a change of kind.
                login_url.map(|login_url| ConnectionKind::Federated { login_url })
            };
            let change = admin::ConnectionChange {
                name,
                kind,
                allowed_domains: if any_domain {
                    Some(vec![])
                } else if domains.is_empty() {
                    None
                } else {
                    Some(domains)
                },
                enabled: None,
            };
            let c = op.update_connection(&id, change).await?;
            connection_output(&c, &public, json, "Updated connection")
        }
        Command::Connections(ConnectionsCommand::Enable { id, json }) => {
            let change = admin::ConnectionChange {
                enabled: Some(true),
                ..Default::default()
            };
            let c = op.update_connection(&id, change).await?;
            connection_output(&c, &public, json, "Enabled connection")
        }
        Command::Connections(ConnectionsCommand::Disable { id, json }) => {
            let change = admin::ConnectionChange {
                enabled: Some(false),
                ..Default::default()
            };
            let c = op.update_connection(&id, change).await?;
            connection_output(&c, &public, json, "Disabled connection")
        }
        Command::Connections(ConnectionsCommand::Remove { id, json }) => {
            op.remove_connection(&id).await?;
            if json {
                pretty(&json!({ "removed": id }))
            } else {
                format!("Removed connection {id}; the people who signed in through it stay.")
            }
        }
        Command::Audit(a) => {
            let user = match &a.user {
                Some(u) => Some(admin::user(store, u).await?.id.to_string()),
                None => None,
            };
            let time =
                |t: &Option<String>| t.as_deref().map(|t| audit::parse_time(t, now)).transpose();
            let query = AuditQuery {
                events: a.events,
                outcome: a.outcome,
                resource: a.server,
                client: a.client,
                user,
                since: time(&a.since).map_err(|e| format!("--since: {e}"))?,
                until: time(&a.until).map_err(|e| format!("--until: {e}"))?,
                before: a.before,
                limit: a.limit,
            };
            let events = store.audit_events(&query).await?;
            let format = if a.json {
                audit::Format::Json
            } else {
                a.format
            };
            if events.is_empty() && format == audit::Format::Table {
                "No audit events match.".to_owned()
            } else {
                audit::render(&events, format).trim_end().to_owned()
            }
        }
    };
    Ok(out)
}

/// What a command that changed something prints: `value` as JSON, or `text()`.
/// The password on standard input's first line, or a generated one (`true`).
fn password_from(stdin: bool) -> Result<(Password, bool), BoxError> {
    if !stdin {
        return Ok((Password::generate(), true));
    }
    let line = read_line("the password")?;
    Ok((Password::new_checked(&line).map_err(|e| e.0)?, false))
}

/// The first line of standard input, without its line ending.
fn read_line(what: &str) -> Result<String, BoxError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read {what} from standard input: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn done(json: bool, value: serde_json::Value, text: impl FnOnce() -> String) -> String {
    if json { pretty(&value) } else { text() }
}

/// A plain-text table: a header row, then one row per item, columns padded to fit.
fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn enabled(disabled_at: Option<gatehouse_core::UnixTime>) -> &'static str {
    if disabled_at.is_some() {
        "disabled"
    } else {
        "enabled"
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn none_if_empty(s: &str) -> &str {
    if s.is_empty() { "(none)" } else { s }
}

async fn sign_in_output(
    store: &dyn gatehouse_core::Store,
    config: &Config,
    json: bool,
) -> Result<String, BoxError> {
    let p = admin::sign_in_policy(store).await?;
    let connections = gatehouse_core::store::SignInStore::connections(store).await?;
    let available = Available {
        email_code: config.engine_settings().email_delivery,
        passkey: config
            .public_issuer()
            .is_ok_and(|i| gatehouse_core::passkey::relying_party(&i).is_some()),
    };
    let email_delivery = available.email_code;
    let defaults = offered(None, &p, &connections, available);
    Ok(if json {
        pretty(&json!({
            "password": p.password,
            "email_code": p.email_code,
            "passkey": p.passkey,
            "email_delivery": email_delivery,
            "passkeys_available": available.passkey,
            "default_methods": defaults.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        }))
    } else {
        format!(
            "Built-in sign-in methods (for MCP servers without their own list):\n  password:   {}\n  email_code: {}{}\n  passkey:    {}{}\n\nOffered by default, in order: {}",
            on_off(p.password),
            on_off(p.email_code),
            if email_delivery {
                ""
            } else {
                " (no email delivery configured: not offered)"
            },
            on_off(p.passkey),
            if available.passkey {
                ""
            } else {
                " (the public URL is not a domain name in a secure context: not offered)"
            },
            if defaults.is_empty() {
                "nothing: nobody can sign in to servers without their own list".to_owned()
            } else {
                defaults
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )
    })
}

/// The JSON form of a connection, with the endpoints the owner's code calls.
fn connection_json(c: &Connection, public: &Issuer) -> serde_json::Value {
    let mut v = json!({
        "id": c.id,
        "name": c.name,
        "kind": c.kind.name(),
        "allowed_domains": c.allowed_domains,
        "enabled": c.enabled,
        "created_at": c.created_at,
    });
    match &c.kind {
        ConnectionKind::Federated { login_url } => {
            v["login_url"] = json!(login_url);
            v["auth_request_url"] = json!(c.auth_request_url(public));
            v["callback_url"] = json!(c.callback_url(public));
        }
        ConnectionKind::Oidc {
            issuer,
            client_id,
            client_secret,
            scopes,
        } => {
            v["issuer"] = json!(issuer);
            v["client_id"] = json!(client_id);
            v["client_secret_set"] = json!(!client_secret.is_empty());
            v["scopes"] = json!(scopes);
            v["callback_url"] = json!(c.callback_url(public));
        }
        ConnectionKind::Github {
            base_url,
            client_id,
            client_secret,
        } => {
            v["base_url"] = json!(base_url);
            v["client_id"] = json!(client_id);
            v["client_secret_set"] = json!(!client_secret.is_empty());
            v["scopes"] = json!(GITHUB_SCOPES.split(' ').collect::<Vec<_>>());
            v["callback_url"] = json!(c.callback_url(public));
        }
    }
    v
}

fn connection_output(c: &Connection, public: &Issuer, json: bool, verb: &str) -> String {
    let v = connection_json(c, public);
    if json {
        return pretty(&v);
    }
    let mut out = format!(
        "{verb} \"{}\"\n\n  id:       {}\n  kind:     {}\n  state:    {}\n  domains:  {}\n",
        c.name,
        c.id,
        c.kind.name(),
        if c.enabled { "enabled" } else { "disabled" },
        if c.allowed_domains.is_empty() {
            "any".to_owned()
        } else {
            c.allowed_domains.join(", ")
        }
    );
    match &c.kind {
        ConnectionKind::Federated { login_url } => {
            out.push_str(&format!(
                "  login:    {login_url}?login_request_id=…&state=…\n\nYour backend posts the person's claims (sub, email, email_verified, name, …) as JSON, with an admin API key as bearer, to\n  {}\nthen your login page sends the browser back to\n  {}?state=…",
                c.auth_request_url(public),
                c.callback_url(public),
            ));
        }
        ConnectionKind::Oidc {
            issuer,
            client_id,
            scopes,
            ..
        } => {
            out.push_str(&format!(
                "  issuer:   {issuer}
  client:   {client_id}
  scopes:   {}

Register this redirect URI for the client at the provider:
  {}",
                scopes.join(" "),
                c.callback_url(public),
            ));
        }
        ConnectionKind::Github {
            base_url,
            client_id,
            ..
        } => {
            out.push_str(&format!(
                "  github:   {base_url}
  client:   {client_id}
  scopes:   {GITHUB_SCOPES}

Set this authorization callback URL in the GitHub OAuth app:
  {}",
                c.callback_url(public),
            ));
        }
    }
    out
}

/// The JSON form of an MCP server, as printed by `servers add --json`.
pub fn resource_json(r: &Resource, public: &Issuer) -> serde_json::Value {
    json!({
        "id": r.id,
        "name": r.name,
        "url": r.url,
        "issuer": r.issuer(public),
        "scopes": r.scopes,
        "token_ttl": r.token_ttl,
        "signing_alg": r.signing_alg,
        "refresh_tokens": r.refresh_tokens,
        "dynamic_registration": r.dynamic_registration,
        "metadata_documents": r.metadata_documents,
        "private_use_redirects": r.private_use_redirects,
        "sign_in_methods": r.sign_in_methods,
        "created_at": r.created_at,
        "protected_resource_metadata": r.protected_resource_metadata(public),
        "protected_resource_metadata_url": gatehouse_core::types::well_known_url(r.url.as_str(), "oauth-protected-resource"),
    })
}

fn client_json(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.id,
        "name": c.name,
        "kind": c.kind,
        "server": c.resource,
        "scopes": c.scopes.to_vec(),
        "redirect_uris": c.redirect_uris,
        "token_endpoint_auth_method": c.auth_method.as_str(),
        "created_at": c.created_at,
        "last_used_at": c.last_used_at,
        "disabled_at": c.disabled_at,
    })
}

fn user_json(u: &User) -> serde_json::Value {
    json!({
        "id": u.id,
        "email": u.email,
        "admin": u.admin,
        "created_at": u.created_at,
        "disabled_at": u.disabled_at,
    })
}

fn key_json(k: &gatehouse_core::keys::KeyStatus) -> serde_json::Value {
    json!({
        "kid": k.kid,
        "alg": k.alg,
        "state": k.state,
        "created_at": k.created_at,
        "activates_at": k.activates_at,
        "retired_at": k.retired_at,
        "published_until": k.published_until,
    })
}

fn key_table(keys: &[gatehouse_core::keys::KeyStatus]) -> String {
    table(
        &["KID", "ALG", "STATE", "SIGNS FROM", "PUBLISHED UNTIL"],
        keys.iter().map(|k| {
            vec![
                k.kid.to_string(),
                k.alg.to_string(),
                k.state.as_str().to_owned(),
                audit::rfc3339(k.activates_at),
                k.published_until.map(audit::rfc3339).unwrap_or_default(),
            ]
        }),
    )
}

fn api_key_json(k: &gatehouse_core::model::ApiKey) -> serde_json::Value {
    json!({
        "id": k.id,
        "name": k.name,
        "user": k.user,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    })
}

fn resource_text(r: &Resource, public: &Issuer, added: bool) -> String {
    let scopes: Vec<String> = r
        .scopes
        .iter()
        .map(|s| {
            if s.description.is_empty() {
                s.name.to_string()
            } else {
                format!("{} ({})", s.name, s.description)
            }
        })
        .collect();
    let prm_url = gatehouse_core::types::well_known_url(r.url.as_str(), "oauth-protected-resource");
    format!(
        "{}MCP server \"{}\"\n\n  id:             {}\n  url:            {}\n  issuer:         {}\n  scopes:         {}\n  token lifetime: {} s, signed with {}\n  refresh tokens: {}\n  registration:   dynamic {}, metadata documents {}\n  app redirects:  private-use schemes {}\n\nProtected Resource Metadata: serve this JSON at {prm_url}\n{}",
        if added { "Registered " } else { "" },
        r.name,
        r.id,
        r.url,
        r.issuer(public),
        if scopes.is_empty() {
            "(none)".to_owned()
        } else {
            scopes.join(", ")
        },
        r.token_ttl,
        r.signing_alg,
        r.refresh_tokens.as_str(),
        on_off(r.dynamic_registration),
        on_off(r.metadata_documents),
        on_off(r.private_use_redirects),
        pretty(&r.protected_resource_metadata(public)),
    )
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_administrative_command_can_print_json() {
        fn leaves(c: &clap::Command, path: String, out: &mut Vec<(String, bool)>) {
            let subs: Vec<_> = c
                .get_subcommands()
                .filter(|s| s.get_name() != "help")
                .collect();
            if subs.is_empty() {
                out.push((path, c.get_arguments().any(|a| a.get_id() == "json")));
                return;
            }
            for s in subs {
                leaves(s, format!("{path} {}", s.get_name()), out);
            }
        }
        let mut all = Vec::new();
        leaves(&super::Cli::command(), "gatehouse".into(), &mut all);
        let without: Vec<&String> = all
            .iter()
            .filter(|(p, json)| !json && p != "gatehouse serve" && p != "gatehouse demo")
            .map(|(p, _)| p)
            .collect();
        assert!(without.is_empty(), "no --json: {without:?}");
        assert!(all.len() >= 20, "{} commands: {all:?}", all.len());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        // clap checks its own definition only when a command is parsed; this checks them all.
        super::Cli::command().debug_assert();
    }
}
