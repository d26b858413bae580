//! The one place that wires things: `App::build` connects and checks everything,
//! `App::bind_api` opens the API's listener, and `App::run` runs the API, planners,
//! reconciler and queue workers (those the role asks for) until the token is cancelled,
//! then drains.

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    api::{self, ApiState, Tokens, WorkerCount, WorkerProbe},
    channels::Channels,
    cli::Role,
    config::Config,
    custody::Custody,
    dispatch::{self, Dispatcher, Recorder},
    domain::Clock,
    planner,
    queue::{Queue, worker::QueueHealth},
    render::{RenderError, Renderer},
    store::{Store, StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Templates(Vec<RenderError>),
    #[error(transparent)]
    Unavailable(#[from] StoreError),
    #[error(transparent)]
    Channel(#[from] crate::channels::BuildError),
    #[error(transparent)]
    Listen(#[from] api::BindError),
    #[error("--role api runs only the HTTP API, and api.listen is \"\" (no API): set api.listen")]
    NoApi,
}

impl AppError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Templates(_) | Self::NoApi => crate::exit::CONFIG,
            Self::Channel(crate::channels::BuildError::Config(_)) => crate::exit::CONFIG,
            Self::Channel(crate::channels::BuildError::Store(_))
            | Self::Unavailable(_)
            | Self::Listen(_) => crate::exit::UNAVAILABLE,
        }
    }
}

/// The daemon over the backend `S` the config chose (picked once, by the caller).
pub struct App<S> {
    pub cfg: Arc<Config>,
    pub store: Arc<S>,
    /// The store's identity as this process holds it (see [`crate::custody`]).
    pub custody: Custody,
    pub renderer: Arc<Renderer>,
    pub channels: Arc<Channels>,
    pub clock: Arc<dyn Clock>,
}

impl<S: Store + Queue> App<S> {
    /// Everything the daemon needs over `store`, checked: the templates load, the
    /// channels can be built, learning is caught up, and the store is the one this
    /// process may write to (see `custody`).
    pub async fn build(cfg: Config, store: S, clock: Arc<dyn Clock>) -> Result<Self, AppError> {
        let renderer = Renderer::load(&cfg.templates_dir).map_err(AppError::Templates)?;
        let channels = Channels::build(&cfg, &store, |name| std::env::var(name).ok()).await?;
        crate::feedback::start_learning(&store, clock.now()).await?;
        let custody = crate::custody::establish(&store).await?;
        Ok(Self {
            cfg: Arc::new(cfg),
            store: Arc::new(store),
            custody,
            renderer: Arc::new(renderer),
            channels: Arc::new(channels),
            clock,
        })
    }

    /// Opens `api.listen` for `role`: `None` when the role runs no API or the config
    /// turns it off (`--role api` without an address is an error). Done before
    /// anything runs, so an address in use fails start-up (exit 69) naming it.
    pub async fn bind_api(&self, role: Role) -> Result<Option<TcpListener>, AppError> {
        if !role.runs_api() {
            return Ok(None);
        }
        match self.cfg.api.listen {
            Some(addr) => Ok(Some(api::bind(addr).await?)),
            None if role == Role::Api => Err(AppError::NoApi),
            None => Ok(None),
        }
    }

    /// Everything (`--role all`), the API on `api.listen` if set, until `shutdown`.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let listener = self.bind_api(Role::All).await?;
        self.run(Role::All, listener, shutdown).await
    }

    /// Runs what `role` asks for until `shutdown` is cancelled: the API on `listener`
    /// (if given), and unless the role is `api`, planners, reconciler, queue pump and
    /// workers. Then drains: intake stops first, in-flight sends get the drain timeout.
    pub async fn run(
        self,
        role: Role,
        listener: Option<TcpListener>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let tracker = TaskTracker::new();
        tracker.spawn(crate::custody::watch(
            self.store.clone(),
            self.custody.clone(),
            self.clock.clone(),
            shutdown.child_token(),
        ));
        if !role.runs_workers() {
            self.spawn_api(&tracker, listener, None, &shutdown);
            tracing::info!(
                role = role.as_str(),
                store = %self.cfg.storage.display_url(),
                "rapport running (api only: no planners or queue workers)"
            );
            shutdown.cancelled().await;
            let until = tokio::time::Instant::now() + GRACE_STOP;
            return self.stop(tracker, until).await;
        }
        let abandon = CancellationToken::new();
        let drain = Drain::start(
            &tracker,
            shutdown.clone(),
            abandon.clone(),
            self.cfg.dispatch.drain_timeout,
        );
        let dispatcher = self.dispatcher(&tracker, &shutdown, abandon);
        let jobs = dispatcher.tasks.clone();
        let health = QueueHealth::default();
        self.spawn_loops(&tracker, &health, &shutdown);
        let monitor = self
            .store
            .monitor(dispatcher, &self.cfg.dispatch, health.clone());
        self.spawn_api(
            &tracker,
            listener,
            Some(worker_probe(&monitor, health)),
            &shutdown,
        );
        self.log_running(role).await;
        let signal = {
            let token = shutdown.clone();
            async move {
                token.cancelled().await;
                Ok(())
            }
        };
        // The monitor stops fetching on the signal. Sends not started are handed back at
        // once; those in flight get the drain timeout, then are abandoned and recorded
        // as uncertain (`Drain`), so the jobs end just after it.
        if let Err(e) = monitor.run_with_signal(signal).await {
            tracing::error!(error = %e, "queue workers ended with an error");
        }
        shutdown.cancel();
        jobs.close();
        if tokio::time::timeout_at(drain.deadline(GRACE_JOBS), jobs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "dispatch jobs still running at the drain deadline; their touches stay leased and are resent later"
            );
        }
        let until = drain.deadline(GRACE_STOP);
        drain.finish();
        self.stop(tracker, until).await
    }

    /// Serves the API on `listener`, if there is one, until `shutdown`; an API that
    /// fails stops the whole process.
    fn spawn_api(
        &self,
        tracker: &TaskTracker,
        listener: Option<TcpListener>,
        workers: Option<WorkerProbe>,
        shutdown: &CancellationToken,
    ) {
        let Some(listener) = listener else { return };
        let state = ApiState {
            store: self.store.clone(),
            cfg: self.cfg.clone(),
            clock: self.clock.clone(),
            tokens: Arc::new(Tokens::from_env(&self.cfg.api.tokens_env)),
            unsubscribe_key: self.channels.unsubscribe_key.clone(),
            twilio_auth_token: twilio_auth_token(&self.cfg),
            workers,
            custody: Some(self.custody.clone()),
        };
        let stop = shutdown.clone();
        tracker.spawn(async move {
            if let Err(e) = api::serve(listener, state, stop.clone()).await {
                // The listener is open, so this is an accept loop gone wrong: stop
                // the whole process rather than run on without its API.
                tracing::error!(error = %e, "the api server failed; stopping");
                stop.cancel();
            }
        });
    }

    /// The dispatcher the queue workers send through, with its group-committing
    /// recorder.
    fn dispatcher(
        &self,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
        abandon: CancellationToken,
    ) -> Arc<Dispatcher<S>> {
        let recorder = Recorder::spawn(self.store.clone(), self.clock.clone(), tracker);
        Arc::new(Dispatcher {
            store: self.store.clone(),
            cfg: self.cfg.clone(),
            renderer: self.renderer.clone(),
            channels: self.channels.clone(),
            clock: self.clock.clone(),
            recorder,
            tasks: TaskTracker::new(),
            stopping: shutdown.clone(),
            abandon,
            custody: self.custody.clone(),
        })
    }

    /// The background loops beside the workers: a planner per enabled occasion, the
    /// queue pump, the reconciler and the response-window sweep.
    fn spawn_loops(
        &self,
        tracker: &TaskTracker,
        health: &QueueHealth,
        shutdown: &CancellationToken,
    ) {
        for occasion in self.cfg.rules.occasions.iter().filter(|o| o.enabled) {
            tracker.spawn(planner::runner::run_loop(
                self.store.clone(),
                self.cfg.clone(),
                occasion.clone(),
                self.clock.clone(),
                self.custody.clone(),
                shutdown.child_token(),
            ));
        }
        tracker.spawn(crate::queue::pump_loop(
            self.store.clone(),
            self.cfg.clone(),
            self.clock.clone(),
            shutdown.child_token(),
        ));
        tracker.spawn(dispatch::reconcile_loop(
            self.store.clone(),
            self.cfg.clone(),
            self.clock.clone(),
            self.custody.clone(),
            health.stopped.clone(),
            shutdown.child_token(),
        ));
        tracker.spawn(crate::feedback::sweep_loop(
            self.store.clone(),
            self.cfg.clone(),
            self.clock.clone(),
            shutdown.child_token(),
        ));
    }

    async fn log_running(&self, role: Role) {
        let contacts = self.store.count_contacts().await.unwrap_or(0);
        tracing::info!(
            role = role.as_str(),
            contacts,
            workers = self.cfg.dispatch.workers,
            email = self.channels.email.kind(),
            sms = self.channels.sms.as_ref().map_or("none", |s| s.kind()),
            webhook = self.channels.webhook.is_some(),
            store = %self.cfg.storage.display_url(),
            "rapport running"
        );
    }

    /// Waits (until `until`) for the background tasks (planners, recorder, API) and
    /// closes the store.
    async fn stop(self, tracker: TaskTracker, until: tokio::time::Instant) -> anyhow::Result<()> {
        tracker.close();
        if tokio::time::timeout_at(until, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop in time");
        }
        self.store.close().await;
        tracing::info!("rapport stopped");
        Ok(())
    }
}

/// After the drain deadline, how long the dispatch jobs get to record what they
/// abandoned, and how long everything else gets to stop: the process is out well
/// within the second `shutdown` allows past the drain timeout.
const GRACE_JOBS: Duration = Duration::from_millis(500);
const GRACE_STOP: Duration = Duration::from_millis(800);

/// The drain deadline: `drain_timeout` after the daemon starts stopping, sends still in
/// flight are abandoned (recorded as uncertain).
struct Drain {
    started: Arc<std::sync::OnceLock<tokio::time::Instant>>,
    timeout: Duration,
    done: CancellationToken,
}

impl Drain {
    fn start(
        tracker: &TaskTracker,
        stopping: CancellationToken,
        abandon: CancellationToken,
        timeout: Duration,
    ) -> Self {
        let started = Arc::new(std::sync::OnceLock::new());
        let done = CancellationToken::new();
        let (at, finished) = (started.clone(), done.clone());
        tracker.spawn(async move {
            tokio::select! {
                () = stopping.cancelled() => {}
                () = finished.cancelled() => return,
            }
            let start = *at.get_or_init(tokio::time::Instant::now);
            tokio::select! {
                () = tokio::time::sleep_until(start + timeout) => abandon.cancel(),
                () = finished.cancelled() => {}
            }
        });
        Self {
            started,
            timeout,
            done,
        }
    }

    /// `grace` past the drain deadline (counted from now if the drain never started).
    fn deadline(&self, grace: Duration) -> tokio::time::Instant {
        *self.started.get_or_init(tokio::time::Instant::now) + self.timeout + grace
    }

    fn finish(&self) {
        self.done.cancel();
    }
}

/// What /readyz reads of the workers, live: a worker stopped by a backend error is not
/// running until the monitor has restarted it.
fn worker_probe(monitor: &apalis::prelude::Monitor, health: QueueHealth) -> WorkerProbe {
    let workers = monitor.context();
    WorkerProbe::new(move || WorkerCount {
        running: workers.workers().iter().filter(|w| w.is_running()).count(),
        total: workers.workers().len(),
        failing: health.failing(),
    })
}

/// The auth token Twilio signs its webhooks with, when SMS go through Twilio.
fn twilio_auth_token(cfg: &Config) -> Option<Arc<secrecy::SecretString>> {
    match &cfg.sms.as_ref()?.transport {
        crate::config::SmsTransport::Twilio { auth_token_env, .. } => std::env::var(auth_token_env)
            .ok()
            .filter(|t| !t.is_empty())
            .map(|t| Arc::new(t.into())),
        crate::config::SmsTransport::Outbox { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::{Coordination, SqliteStore};

    /// A store that fails while the signing key is read is a dependency down (69), not
    /// a bad config (78); a bad signing secret is a bad config.
    #[tokio::test]
    async fn a_store_failure_building_the_channels_is_exit_69_and_a_bad_secret_78() {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![(
            "RAPPORT__STORAGE__URL".to_owned(),
            format!("sqlite://{}/r.db", dir.path().display()),
        )];
        let cfg = Config::load_with(Path::new("config/rapport.toml"), None, env).unwrap();
        let store = SqliteStore::open(&cfg.storage.url).await.unwrap();
        store.close().await;
        let err = Channels::build(&cfg, &store, |_| None).await.err().unwrap();
        assert_eq!(AppError::from(err).exit_code(), crate::exit::UNAVAILABLE);

        let env = vec![
            (
                "RAPPORT__STORAGE__URL".to_owned(),
                format!("sqlite://{}/s.db", dir.path().display()),
            ),
            (
                "RAPPORT__API__SIGNING_SECRET_ENV".to_owned(),
                "KEY".to_owned(),
            ),
        ];
        let cfg = Config::load_with(Path::new("config/rapport.toml"), None, env).unwrap();
        let store = SqliteStore::open(&cfg.storage.url).await.unwrap();
        let short = |_: &str| Some("short".to_owned());
        let err = Channels::build(&cfg, &store, short).await.err().unwrap();
        assert_eq!(AppError::from(err).exit_code(), crate::exit::CONFIG);
    }
}
