//! Delivery: render a touch that has its place for its channel, wait for the provider's
//! rate limit, send, and turn the result into the ledger's outcome (sent, retried on
//! the channel's schedule, moved on to the occasion's next channel, or failed).

use crate::domain::Channel;
use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::Dispatcher;
use crate::{
    channels::{
        DeliveryClass, DeliveryError, Gate, ListUnsubscribe, OutboundEmail, OutboundSms,
        OutboundWebhook, clicks, unsubscribe,
    },
    config::Trigger,
    domain::{Contact, Outcome, Touch},
    render,
    store::Store,
};

/// Why a send did not happen.
enum NotSent {
    /// Nothing can be sent (a template that does not render): final, no fallback.
    Broken(String),
    /// The provider (or the way to it) said no.
    Delivery(DeliveryError),
    /// Never started (the daemon is stopping, or the gate refused): hand the touch back
    /// untouched.
    NotStarted,
    /// The provider's rate limit has no place for it before its expiry.
    Late(String),
    /// The rate limit's place falls outside the send window: wait for it to open.
    Held(DateTime<Utc>, String),
}

impl From<DeliveryError> for NotSent {
    fn from(e: DeliveryError) -> Self {
        match e.class {
            DeliveryClass::NotStarted => Self::NotStarted,
            _ => Self::Delivery(e),
        }
    }
}

/// What [`Dispatcher::deliver`] came to.
pub(super) enum Delivered {
    Outcome(Outcome),
    /// The send never started: the touch goes back to the ledger as it was.
    NotStarted,
}

impl<S: Store> Dispatcher<S> {
    /// Renders and sends a touch that has its place, through `gate` right before the
    /// provider call.
    pub(super) async fn deliver(
        &self,
        touch: &Touch,
        contact: Option<&Contact>,
        gate: &dyn Gate,
    ) -> Delivered {
        let Some(contact) = contact else {
            return Delivered::Outcome(Outcome::Suppressed {
                id: touch.id.clone(),
                reason: "contact no longer exists".into(),
            });
        };
        let sent = match self.context(touch, contact).await {
            Ok(ctx) => match touch.channel {
                Channel::Email => self.send_email(touch, contact, &ctx, gate).await,
                Channel::Sms => self.send_sms(touch, contact, &ctx, gate).await,
                Channel::Webhook => self.send_webhook(touch, contact, &ctx, gate).await,
            },
            Err(e) => Err(e),
        };
        Delivered::Outcome(match sent {
            Ok(()) => Outcome::Sent {
                id: touch.id.clone(),
            },
            Err(NotSent::NotStarted) => return Delivered::NotStarted,
            Err(NotSent::Broken(reason)) => Outcome::Failed {
                id: touch.id.clone(),
                reason,
            },
            Err(NotSent::Late(reason)) => Outcome::Expired {
                id: touch.id.clone(),
                reason,
            },
            Err(NotSent::Held(at, reason)) => Outcome::Defer {
                id: touch.id.clone(),
                at,
                reason: Some(reason),
            },
            Err(NotSent::Delivery(e)) => self.settle(touch, contact, e).await,
        })
    }

    /// The template context: the contact, the occasion, and for an event-triggered
    /// touch the event it follows.
    async fn context(
        &self,
        touch: &Touch,
        contact: &Contact,
    ) -> Result<serde_json::Value, NotSent> {
        let year = touch.occurrence.parse::<i32>().unwrap_or_else(|_| {
            touch
                .scheduled_at
                .format("%Y")
                .to_string()
                .parse()
                .unwrap_or(0)
        });
        let mut ctx = render::context(contact, &touch.occasion, year, &self.cfg.brand_name);
        if let Some(Trigger::Event { .. }) =
            self.cfg.rules.occasion(&touch.occasion).map(|o| &o.trigger)
        {
            // The event is the touch's occurrence; a template may use its data.
            let events = self
                .store
                .events_for_contact(&contact.id)
                .await
                .map_err(|e| DeliveryError::transient(format!("store: {e}")))?;
            if let Some(e) = events.iter().find(|e| e.id.as_str() == touch.occurrence) {
                ctx = render::with_event(ctx, e);
            }
        }
        Ok(ctx)
    }

    /// Waits for the channel's next place under its provider rate limit, if it has one.
    /// A place after the touch's expiry, or outside its send window, is not waited for:
    /// the touch expires, or is held until the window opens.
    async fn pace(&self, touch: &Touch, contact: &Contact) -> Result<(), NotSent> {
        let channel = touch.channel;
        let Some(rate) = self.cfg.rate(channel) else {
            return Ok(());
        };
        // The limiter's key: the channel's name (shared by every replica on Redis).
        let wait = self
            .store
            .rate_reserve(channel.as_str(), rate.interval(), 1)
            .await
            .map_err(|e| DeliveryError::transient(format!("rate limiter: {e}")))?;
        if wait.is_zero() {
            return Ok(());
        }
        let place =
            self.clock.now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        let window = self
            .cfg
            .rules
            .occasion(&touch.occasion)
            .map_or(self.cfg.rules.defaults.send_window, |o| {
                self.cfg.rules.send_window(o, &contact.tier)
            });
        let zone = contact.zone(self.cfg.rules.defaults.timezone);
        // The place itself is waited for here, not stored: whether the window moves it
        // is asked of the exact instant (asked of its next whole second, every place
        // not on a second boundary would look moved and be held instead of waited for).
        match window.fit(place, zone, touch.expires_at) {
            None => {
                return Err(NotSent::Late(format!(
                    "the {channel} rate limit ({rate}) has no place before its expiry"
                )));
            }
            Some(open) if open > place => {
                return Err(NotSent::Held(
                    open,
                    format!(
                        "held: the {channel} rate limit ({rate}) has no place before the send window closes"
                    ),
                ));
            }
            Some(_) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(()),
            () = self.stopping.cancelled() => Err(NotSent::NotStarted),
        }
    }

    async fn send_email(
        &self,
        touch: &Touch,
        contact: &Contact,
        ctx: &serde_json::Value,
        gate: &dyn Gate,
    ) -> Result<(), NotSent> {
        let to = contact
            .email
            .clone()
            .ok_or_else(|| DeliveryError::permanent("no email address"))?;
        let mut content = tracing::debug_span!("render")
            .in_scope(|| {
                self.renderer
                    .render_email(&touch.occasion, &contact.tier, ctx)
            })
            .map_err(|e| NotSent::Broken(format!("cannot render: {e}")))?;
        if self.cfg.email.track_clicks {
            self.track_clicks(touch, &mut content);
        }
        let transactional = self
            .cfg
            .rules
            .occasion(&touch.occasion)
            .is_some_and(|o| o.transactional);
        let email = OutboundEmail {
            touch: touch.id.clone(),
            to,
            to_name: ctx["contact"]["full_name"].as_str().map(str::to_owned),
            content,
            unsubscribe: if transactional {
                None
            } else {
                self.list_unsubscribe(contact)
            },
        };
        self.pace(touch, contact).await?;
        Ok(self
            .channels
            .email
            .send_gated(&email, gate)
            .instrument(tracing::debug_span!("send"))
            .await?)
    }

    /// Points every http(s) link of the email's bodies at `PUBLIC_URL/c/TOKEN` (the
    /// token signs the touch and the original URL), except the unsubscribe links.
    fn track_clicks(&self, touch: &Touch, content: &mut crate::render::RenderedEmail) {
        let Some(base) = self.cfg.api.public_url.as_deref() else {
            return;
        };
        let key = &self.channels.unsubscribe_key;
        let skip = unsubscribe::https_url(base, "");
        let link =
            |url: &str| clicks::token(key, touch.id.as_str(), url).map(|t| format!("{base}/c/{t}"));
        content.text = clicks::rewrite_text(&content.text, Some(&skip), link);
        if let Some(html) = &content.html {
            content.html = Some(clicks::rewrite_html(html, Some(&skip), link));
        }
    }

    /// `List-Unsubscribe` targets for `contact`: the one-click https link under
    /// `api.public_url` and the mailto address, each carrying the contact's token
    /// (`None` when neither is configured).
    fn list_unsubscribe(&self, contact: &Contact) -> Option<ListUnsubscribe> {
        if self.cfg.api.public_url.is_none() && self.cfg.email.list_unsubscribe_mailto.is_none() {
            return None;
        }
        let token = unsubscribe::token(&self.channels.unsubscribe_key, &contact.id);
        Some(ListUnsubscribe {
            https: self
                .cfg
                .api
                .public_url
                .as_deref()
                .map(|u| unsubscribe::https_url(u, &token)),
            mailto: self
                .cfg
                .email
                .list_unsubscribe_mailto
                .as_ref()
                .map(|m| unsubscribe::mailto(m, &token)),
        })
    }

    fn render_text(
        &self,
        touch: &Touch,
        contact: &Contact,
        channel: Channel,
        ctx: &serde_json::Value,
    ) -> Result<String, NotSent> {
        tracing::debug_span!("render")
            .in_scope(|| {
                self.renderer
                    .render_text(&touch.occasion, channel, &contact.tier, ctx)
            })
            .map_err(|e| NotSent::Broken(format!("cannot render: {e}")))
    }

    async fn send_sms(
        &self,
        touch: &Touch,
        contact: &Contact,
        ctx: &serde_json::Value,
        gate: &dyn Gate,
    ) -> Result<(), NotSent> {
        let channel = self
            .channels
            .sms
            .as_ref()
            .ok_or_else(|| DeliveryError::permanent("no SMS channel configured"))?;
        let to = contact
            .phone
            .clone()
            .ok_or_else(|| DeliveryError::permanent("no phone number"))?;
        let body = self.render_text(touch, contact, Channel::Sms, ctx)?;
        let sms = OutboundSms {
            touch: touch.id.clone(),
            to,
            body,
        };
        self.pace(touch, contact).await?;
        Ok(channel
            .send_gated(&sms, gate)
            .instrument(tracing::debug_span!("send"))
            .await?)
    }

    async fn send_webhook(
        &self,
        touch: &Touch,
        contact: &Contact,
        ctx: &serde_json::Value,
        gate: &dyn Gate,
    ) -> Result<(), NotSent> {
        let channel = self
            .channels
            .webhook
            .as_ref()
            .ok_or_else(|| DeliveryError::permanent("no webhook endpoint configured"))?;
        if self.channels.webhook_disabled(self.store.as_ref()).await {
            return Err(DeliveryError::gone(
                "webhook endpoint disabled after a 410 (change [channels.webhook] to enable it)",
            )
            .into());
        }
        let text = self.render_text(touch, contact, Channel::Webhook, ctx)?;
        // Thin and stable: the same bytes on every retry (the timestamp is when the
        // touch was due, not when this attempt runs).
        let body = serde_json::json!({
            "type": "touch.due",
            "timestamp": touch.scheduled_at.to_rfc3339(),
            "data": {
                "touch_id": touch.id.as_str(),
                "occasion": touch.occasion,
                "occurrence": touch.occurrence,
                "tier": contact.tier,
                "contact_id": contact.id.as_str(),
                "text": text,
            },
        });
        let hook = OutboundWebhook {
            touch: touch.id.clone(),
            body: body.to_string().into_bytes(),
        };
        self.pace(touch, contact).await?;
        match channel
            .send_gated(&hook, gate)
            .instrument(tracing::debug_span!("send"))
            .await
        {
            Err(e) if e.class == DeliveryClass::Gone => {
                self.channels
                    .disable_webhook(self.store.as_ref(), self.clock.now())
                    .await;
                Err(e.into())
            }
            sent => Ok(sent?),
        }
    }
}
