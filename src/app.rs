//! The one place that wires things: `App::build` connects and checks everything,
//! `App::run_until` runs planner, reconciler and queue workers until the token is
//! cancelled, then drains.

use std::{sync::Arc, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    channels::Channels,
    config::Config,
    dispatch::{self, Dispatcher, Recorder},
    domain::Clock,
    planner,
    queue::worker::QueueWorkers,
    render::{RenderError, Renderer},
    store::{AnyStore, Store, StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Templates(Vec<RenderError>),
    #[error(transparent)]
    Unavailable(#[from] StoreError),
    #[error("{0}")]
    Channel(String),
}

impl AppError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Templates(_) | Self::Channel(_) => crate::exit::CONFIG,
            Self::Unavailable(_) => crate::exit::UNAVAILABLE,
        }
    }
}

pub struct App {
    pub cfg: Arc<Config>,
    pub store: Arc<AnyStore>,
    pub renderer: Arc<Renderer>,
    pub channels: Arc<Channels>,
    pub clock: Arc<dyn Clock>,
}

impl App {
    pub async fn build(cfg: Config, clock: Arc<dyn Clock>) -> Result<Self, AppError> {
        let renderer = Renderer::load(&cfg.templates_dir).map_err(AppError::Templates)?;
        let store = AnyStore::open(&cfg.storage).await?;
        if let AnyStore::Redis(redis) = &store {
            redis.warn_about_settings().await;
        }
        let channels = Channels::build(&cfg, &store, |name| std::env::var(name).ok())
            .await
            .map_err(AppError::Channel)?;
        Ok(Self {
            cfg: Arc::new(cfg),
            store: Arc::new(store),
            renderer: Arc::new(renderer),
            channels: Arc::new(channels),
            clock,
        })
    }

    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let tracker = TaskTracker::new();
        let recorder = Recorder::spawn(self.store.clone(), self.clock.clone(), &tracker);
        let dispatcher = Arc::new(Dispatcher {
            store: self.store.clone(),
            cfg: self.cfg.clone(),
            renderer: self.renderer.clone(),
            channels: self.channels.clone(),
            clock: self.clock.clone(),
            recorder,
            tasks: TaskTracker::new(),
            stopping: shutdown.clone(),
        });
        let jobs = dispatcher.tasks.clone();
        let enabled: Vec<_> = self
            .cfg
            .occasions
            .iter()
            .filter(|o| o.enabled)
            .cloned()
            .collect();
        for occasion in enabled {
            tracker.spawn(planner::runner::run_loop(
                self.store.clone(),
                self.cfg.clone(),
                occasion,
                self.clock.clone(),
                shutdown.child_token(),
            ));
        }
        tracker.spawn(dispatch::pump_loop(
            self.store.clone(),
            self.cfg.clone(),
            self.clock.clone(),
            shutdown.child_token(),
        ));
        tracker.spawn(dispatch::reconcile_loop(
            self.store.clone(),
            self.cfg.clone(),
            self.clock.clone(),
            shutdown.child_token(),
        ));
        let contacts = self.store.count_contacts().await.unwrap_or(0);
        tracing::info!(
            contacts,
            workers = self.cfg.dispatch.workers,
            email = self.channels.email.kind(),
            sms = self.channels.sms.as_ref().map_or("none", |s| s.kind()),
            webhook = self.channels.webhook.is_some(),
            store = %self.cfg.storage.display_url(),
            "rapport running"
        );
        let monitor = self.store.monitor(dispatcher, &self.cfg.dispatch);
        let signal = {
            let token = shutdown.clone();
            async move {
                token.cancelled().await;
                Ok(())
            }
        };
        // The monitor stops fetching on the signal and waits for in-flight jobs up to
        // the drain timeout; what is cut off stays leased in the ledger and is resent
        // (same Message-ID) after the lease runs out.
        if let Err(e) = monitor.run_with_signal(signal).await {
            tracing::error!(error = %e, "queue workers ended with an error");
        }
        shutdown.cancel();
        jobs.close();
        // The monitor already waited up to the drain timeout for these; a job still
        // running was cut off by that deadline and gets a short grace only.
        if tokio::time::timeout(Duration::from_secs(2), jobs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "dispatch jobs still running after the drain timeout; their touches stay leased and are resent later"
            );
        }
        tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop within 10s");
        }
        self.store.close().await;
        tracing::info!("rapport stopped");
        Ok(())
    }
}
