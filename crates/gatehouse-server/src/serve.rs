//! Running the server: open the data directory, start the engine, serve until told to stop.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use gatehouse_core::{Engine, Issuer, SystemClock};
use gatehouse_store::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::router;
use crate::config::Config;
use crate::routes::AppState;

/// Any failure of the command line or the server, as a message for the operator.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens the SQLite store in `data_dir`, creating the directory (private to its owner).
pub async fn open_store(data_dir: &Path) -> Result<SqliteStore, BoxError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", data_dir.display()))?;
    restrict(data_dir, 0o700);
    let path = data_dir.join("gatehouse.db");
    let store = SqliteStore::open(&path)
        .await
        .map_err(|e| format!("cannot open database {}: {e}", path.display()))?;
    // The database holds the private signing keys.
    restrict(&path, 0o600);
    Ok(store)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), error = %e, "could not restrict permissions");
    }
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) {}

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
    /// Starts serving `engine` on `listener`, and polls the store for changes made by other
    /// processes every `refresh`.
    pub fn start(
        engine: Arc<Engine>,
        listener: TcpListener,
        refresh: Duration,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(AppState {
            engine: engine.clone(),
        });
        let refresher = tokio::spawn(refresh_loop(engine.clone(), refresh));
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
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Waits until the server ends (after `stop`, or on a fatal error).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

async fn refresh_loop(engine: Arc<Engine>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = engine.refresh().await {
            tracing::warn!(error = %e, "could not check the store for changes");
        }
    }
}

/// Starts the engine on `store`.
pub async fn start_engine(
    public: Issuer,
    store: Arc<SqliteStore>,
) -> Result<Arc<Engine>, BoxError> {
    let engine = Engine::start(public, store, Arc::new(SystemClock)).await?;
    Ok(Arc::new(engine))
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
    let store = Arc::new(open_store(&config.data_dir).await?);
    let engine = start_engine(public.clone(), store.clone()).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let mut server = RunningServer::start(
        engine,
        listener,
        Duration::from_millis(config.refresh_interval_ms.max(50)),
    )?;
    tracing::info!(listen = %server.addr, issuer = %public, data_dir = %config.data_dir.display(), "gatehouse is serving");
    tokio::select! {
        r = server.wait() => r?,
        () = shutdown_signal() => {
            tracing::info!("shutting down: finishing requests in flight");
            server.stop().await?;
        }
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
