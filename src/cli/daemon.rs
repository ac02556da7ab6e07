//! `postured run`: the daemon's life under a service manager.
//!
//! The listening socket is bound once, before the store is touched, and kept for the process's
//! life. On it runs one *generation* at a time: an [`App`] built from the configuration, its
//! HTTP server, its scheduler and its background tasks. The service manager is told `READY=1`
//! once the generation's first poll round is done and the store answers (what `/readyz`
//! checks); a watchdog is fed when the unit asks for one (`WatchdogSec=`).
//!
//! `SIGHUP` reloads the configuration: the file is read again and a new generation is built
//! beside the running one (configuration, catalog, templates, store, connectors). If anything
//! fails the running generation goes on untouched and the error is logged and shown as the
//! unit's status. Otherwise the running generation stops taking new polls, its in-flight polls
//! and HTTP requests finish (within `[scheduler] shutdown_grace`), and the new one starts on
//! the same socket (connections arriving meanwhile wait in its backlog). Tenants' state lives
//! in the store, so nothing is lost: the new generation resumes each tenant from it on its
//! first poll. Counters of `/metrics` restart from zero, which Prometheus reads as a reset.
//! `[server] listen` cannot change by reload (the socket is kept); a change is logged and
//! applies at the next start. `SIGINT`/`SIGTERM` stop the daemon the same way; a second one
//! exits at once (130).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Failure;
use crate::app::App;
use crate::config::{Config, Secrets};
use crate::{assembly, scheduler, server, service};

/// What a signal asks of the daemon.
enum Request {
    Stop,
    Reload,
}

/// The signals the daemon answers: SIGINT and SIGTERM (stop), SIGHUP (reload).
struct Signals {
    term: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Stop,
            _ = self.interrupt.recv() => Request::Stop,
            _ = self.hangup.recv() => Request::Reload,
        }
    }

    async fn stop(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.interrupt.recv() => {},
        }
    }
}

/// One running App with its server, scheduler and background tasks.
struct Generation {
    app: Arc<App>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    server: JoinHandle<std::io::Result<()>>,
}

impl Generation {
    /// Start `app` on (a duplicate of) `socket`: serve, schedule, run the background tasks, and
    /// tell the service manager it is ready once the first poll round is done and the store
    /// answers.
    fn start(app: Arc<App>, socket: &std::net::TcpListener) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::from_std(socket.try_clone()?)?;
        let cancel = CancellationToken::new();
        let server = tokio::spawn(server::serve(app.clone(), listener, cancel.clone()));
        let tracker = TaskTracker::new();
        let round = scheduler::spawn_all(app.clone(), cancel.clone(), &tracker);
        crate::app::tasks::spawn(app.background(), &cancel, &tracker)?;
        tracker.close();
        tokio::spawn(announce_ready(app.clone(), round, cancel.clone()));
        Ok(Self {
            app,
            cancel,
            tracker,
            server,
        })
    }

    /// Stop taking polls and requests; wait for the in-flight ones up to `grace`, or until a
    /// stop signal (then `false`: exit at once).
    async fn stop(self, grace: Duration, signals: &mut Signals) -> bool {
        self.cancel.cancel();
        let drained = tokio::select! {
            _ = self.tracker.wait() => {
                tracing::info!("all polls drained");
                true
            }
            _ = tokio::time::sleep(grace) => {
                tracing::warn!("grace deadline passed; abandoning in-flight polls");
                true
            }
            _ = signals.stop() => {
                tracing::warn!("second signal: exiting now");
                false
            }
        };
        if drained {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        }
        drained
    }
}

/// `READY=1` once `round` is done and the store answers `/readyz`'s check (retried every
/// second until it does, or the generation stops).
async fn announce_ready(app: Arc<App>, round: scheduler::FirstRound, cancel: CancellationToken) {
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = round.wait() => {}
    }
    loop {
        match app.check_store().await {
            Ok(()) => break,
            Err(reason) => {
                service::status(&format!("waiting for the store: {reason}"));
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    let tenants = app.tenants().len();
    tracing::info!(tenants, "ready: first poll round done");
    service::ready(&format!("{tenants} tenant(s); first poll round done"));
}

/// Build the App of the configuration file `path` as a reload would run it (every secret
/// resolved, store opened and migrated, templates found).
async fn prepare(path: &Path) -> anyhow::Result<Arc<App>> {
    let cfg = Config::load_resolving(path, Secrets::ALL)?;
    Ok(Arc::new(assembly::build_app(cfg).await?))
}

/// Run the daemon until stopped (see the module header).
pub(super) async fn run(path: &Path, cfg: Config) -> Result<ExitCode, Failure> {
    let listen = cfg.server.listen.clone();
    // Listen before touching the store: a port in use fails here, before any migration.
    let socket = std::net::TcpListener::bind(&listen)
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = socket.local_addr().map_err(anyhow::Error::from)?;
    let mut signals = Signals::install().map_err(anyhow::Error::from)?;
    let app = Arc::new(assembly::build_app(cfg).await?);
    let process = CancellationToken::new();
    tokio::spawn(service::watchdog(process.clone()));
    let mut generation = Generation::start(app, &socket)?;
    tracing::info!(%addr, tenants = generation.app.tenants().len(), "postured started");
    println!("postured is serving metrics on http://{addr}/metrics");

    loop {
        match signals.next().await {
            Request::Stop => break,
            Request::Reload => {
                service::reloading();
                tracing::info!(config = %path.display(), "SIGHUP: reloading the configuration");
                match prepare(path).await {
                    Ok(next) => {
                        if next.config.server.listen != listen {
                            tracing::warn!(
                                from = %listen, to = %next.config.server.listen,
                                "[server] listen changed: it applies at the next start"
                            );
                        }
                        let grace = generation.app.config.scheduler.shutdown_grace;
                        if !generation.stop(grace, &mut signals).await {
                            return Ok(ExitCode::from(130));
                        }
                        generation = Generation::start(next, &socket)?;
                        tracing::info!(
                            tenants = generation.app.tenants().len(),
                            "configuration reloaded"
                        );
                    }
                    Err(e) => {
                        tracing::error!("reload refused, the running configuration stays: {e:#}");
                        service::ready(&format!(
                            "reload refused (the running configuration stays): {}",
                            first_line(&format!("{e:#}"))
                        ));
                    }
                }
            }
        }
    }
    service::stopping();
    let grace = generation.app.config.scheduler.shutdown_grace;
    tracing::info!(
        grace_seconds = grace.as_secs_f64(),
        "shutting down: draining in-flight polls"
    );
    let drained = generation.stop(grace, &mut signals).await;
    process.cancel();
    Ok(if drained {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(130)
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}
