//! Running the server: open the data directory, start the engine, serve until told to stop.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use gatehouse_core::store::Store;
use gatehouse_core::{Engine, Issuer, SystemClock};
use gatehouse_store::{
    MigrationName, MigrationStatus, Migrations, PgStore, PoolSettings, SqliteStore,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::router;
use crate::audit::AuditWriter;
use crate::config::Config;
use crate::fetch::{AddressPolicy, SafeFetcher};
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::routes::AppState;
use crate::throttle::{ClientLimits, Limits};

/// Any failure of the command line or the server, as a message for the operator.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The database `config` names, as its own type: migrations and backups differ by backend.
pub enum Database {
    /// The SQLite file in `data_dir`.
    Sqlite(SqliteStore),
    /// PostgreSQL at `database_url`.
    Postgres(PgStore),
}

impl Database {
    /// Opens the database `config` names, doing `migrations`. A database a newer Gatehouse
    /// migrated opens with a warning.
    pub async fn open(config: &Config, migrations: Migrations) -> Result<Self, BoxError> {
        let db = match &config.database_url {
            None => Database::Sqlite(open_sqlite(&config.data_dir, migrations).await?),
            Some(url) => {
                let settings = PoolSettings {
                    max_connections: config.database_max_connections,
                    ..PoolSettings::default()
                };
                let store = PgStore::connect_migrating(&url.0, settings, migrations)
                    .await
                    .map_err(|e| format!("cannot open the PostgreSQL database: {e}"))?;
                Database::Postgres(store)
            }
        };
        if migrations != Migrations::Leave {
            let newer = db.migration_status().await?.newer;
            if !newer.is_empty() {
                tracing::warn!(
                    ?newer,
                    "the database has migrations of a newer Gatehouse: upgrade this node"
                );
            }
        }
        Ok(db)
    }

    /// Where the database stands against this version's migrations.
    pub async fn migration_status(&self) -> Result<MigrationStatus, BoxError> {
        Ok(match self {
            Database::Sqlite(s) => s.migration_status().await?,
            Database::Postgres(p) => p.migration_status().await?,
        })
    }

    /// Applies the migrations the database lacks; returns them.
    pub async fn migrate(&self) -> Result<Vec<MigrationName>, BoxError> {
        Ok(match self {
            Database::Sqlite(s) => s.migrate().await?,
            Database::Postgres(p) => p.migrate().await?,
        })
    }

    /// The store on it.
    pub fn into_store(self) -> Arc<dyn Store> {
        match self {
            Database::Sqlite(s) => Arc::new(s),
            Database::Postgres(p) => Arc::new(p),
        }
    }
}

/// Opens the store `config` names: PostgreSQL at `database_url`, or else the SQLite file in
/// `data_dir`. Pending migrations are applied, or with `auto_migrate` off refused.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, BoxError> {
    let migrations = if config.auto_migrate {
        Migrations::Apply
    } else {
        Migrations::Require
    };
    Ok(Database::open(config, migrations).await?.into_store())
}

/// Opens the SQLite store in `data_dir`, creating the directory (private to its owner).
pub async fn open_sqlite(data_dir: &Path, migrations: Migrations) -> Result<SqliteStore, BoxError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", data_dir.display()))?;
    restrict(data_dir, 0o700);
    let path = data_dir.join("gatehouse.db");
    let store = SqliteStore::open_with(&path, migrations)
        .await
        .map_err(|e| format!("cannot open database {}: {e}", path.display()))?;
    // The database holds the private signing keys.
    restrict(&path, 0o600);
    Ok(store)
}

#[cfg(unix)]
pub(crate) fn restrict(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), error = %e, "could not restrict permissions");
    }
}

#[cfg(not(unix))]
pub(crate) fn restrict(_path: &Path, _mode: u32) {}

/// A server running in the background.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The engine behind it.
    pub engine: Arc<Engine>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Starts serving `state` on `listener`.
    pub fn start_with(
        state: AppState,
        listener: TcpListener,
        refresh: Duration,
    ) -> std::io::Result<Self> {
        let engine = state.engine.clone();
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let limits = state.limits.clone();
        // Handlers that rate-limit read the peer address.
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        let refresher = tokio::spawn(refresh_loop(engine.clone(), refresh));
        let forgetter = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limits.forget_idle();
            }
        });
        let task = tokio::spawn(async move {
            // Responses go out in several writes; without TCP_NODELAY, Nagle's algorithm and
            // delayed ACKs hold the last one back ~40 ms on keep-alive connections.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
            refresher.abort();
            forgetter.abort();
            result
        });
        Ok(RunningServer {
            addr,
            engine,
            shutdown: Some(tx),
            task,
        })
    }

    /// Stops accepting connections, lets requests in flight finish, and waits.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let result = (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.engine.flush_audit().await;
        result
    }

    /// Waits until the server ends (after `stop`, or on a fatal error).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// How often expired records and unused registrations are deleted, and signing keys due for
/// rotation replaced.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

async fn refresh_loop(engine: Arc<Engine>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune: Option<std::time::Instant> = None;
    // A clean-up pass is bounded; while one leaves more behind, the next runs a tick later.
    let mut backlog = false;
    loop {
        tick.tick().await;
        if let Err(e) = engine.refresh().await {
            tracing::warn!(error = %e, "could not check the store for changes");
        }
        let due = last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
        if due || backlog {
            backlog = prune(&engine).await;
        }
        if due {
            last_prune = Some(std::time::Instant::now());
            match engine.rotate_keys_when_due().await {
                Ok(made) => {
                    for k in made {
                        tracing::info!(kid = %k.kid, alg = %k.alg, signs_from = k.activates_at.0, "published the next signing key");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not rotate signing keys"),
            }
        }
    }
}

/// One bounded clean-up pass; whether it left more to delete.
async fn prune(engine: &Engine) -> bool {
    match engine.prune().await {
        Ok(p) => {
            if p.deleted > 0 {
                tracing::info!(
                    records = p.deleted,
                    more = p.more,
                    "deleted expired records"
                );
            }
            p.more
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not delete expired records");
            false
        }
    }
}

/// Starts the engine on `store` with the settings of `config`, and the state to serve it with.
pub async fn start_app(
    public: Issuer,
    store: Arc<dyn Store>,
    config: &Config,
) -> Result<AppState, BoxError> {
    let metrics = Arc::new(Metrics::new());
    let engine = start_engine_with(public, store, config, metrics.clone()).await?;
    app_state(engine, metrics, config)
}

/// Starts the engine on `store` with the settings of `config`, counting its audit events in
/// `metrics`.
pub async fn start_engine_with(
    public: Issuer,
    store: Arc<dyn Store>,
    config: &Config,
    metrics: Arc<Metrics>,
) -> Result<Arc<Engine>, BoxError> {
    let policy = if config.dev_loopback_metadata_documents {
        tracing::warn!(
            "dev_loopback_metadata_documents is on: client metadata documents may be fetched from this machine; never use this in production"
        );
        AddressPolicy::AllowLoopback
    } else {
        AddressPolicy::PublicOnly
    };
    let fetcher = SafeFetcher::new(policy).map_err(|e| format!("HTTP client: {e}"))?;
    let engine = Engine::start(public, store.clone(), Arc::new(SystemClock))
        .await?
        .with_settings(config.engine_settings())
        .with_document_fetcher(Arc::new(fetcher), config.dev_loopback_metadata_documents)
        .with_admission(Arc::new(ClientLimits::new(config, metrics.clone())))
        .with_audit_sink(AuditWriter::spawn(store, metrics));
    Ok(Arc::new(engine))
}

/// What the handlers share, as `config` sets it up; `metrics` are those the engine counts
/// into (see [`start_engine_with`]).
pub fn app_state(
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    config: &Config,
) -> Result<AppState, BoxError> {
    let mailer = Mailer::from_config(config)?;
    Ok(AppState {
        engine,
        limits: Arc::new(Limits::new(config)),
        mailer: mailer.map(Arc::new),
        upstream: Arc::new(
            crate::oidc::Upstream::new()
                .map_err(|e| format!("HTTP client for identity providers: {e}"))?,
        ),
        metrics,
        metrics_token: config
            .metrics_token
            .as_ref()
            .map(|t| Arc::from(t.0.as_str())),
    })
}

/// `gatehouse serve`: runs until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn serve(config: &Config) -> Result<(), BoxError> {
    let public = config.public_issuer()?;
    if config.public_url.is_none() && config.listen.ip().is_unspecified() {
        tracing::warn!(
            listen = %config.listen,
            "public_url is not set, so issuers are {public}: set public_url to the URL clients use"
        );
    }
    let stop = shutdown_signal();
    let store = open_store(config).await?;
    let state = start_app(public.clone(), store.clone(), config).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let mut server = RunningServer::start_with(
        state,
        listener,
        Duration::from_millis(config.refresh_interval_ms.max(50)),
    )?;
    let database = match config.database_url {
        Some(_) => "postgresql".to_owned(),
        None => config.database_path().display().to_string(),
    };
    tracing::info!(listen = %server.addr, issuer = %public, database, "gatehouse is serving");
    tokio::select! {
        r = server.wait() => r?,
        () = stop => {
            tracing::info!("shutting down: finishing requests in flight");
            server.stop().await?;
        }
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so call it before the server starts listening: a signal that arrives
/// in between then stops the server instead of killing the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
