//! What `rapport contacts show` says about a relationship (what was learned, in words,
//! and the responses and notes for the timeline), and `rapport response add`.

use chrono::{DateTime, Utc};
use rapport::domain::Channel;
use rapport::store::{Coordination, Relationships};

use rapport::{
    cli::ResponseCommand,
    config::Config,
    domain::{Contact, ContactId, TouchId},
    feedback::{self, Inbound, Recorded},
    learning::{self, ResponseKind},
    store::{ResponseRecord, StoreError},
};

use super::{fmt_ts, open_store, parse_instant};

/// `rapport response add`: exit 0 recorded (or known), 65 bad data, 1 otherwise.
pub(super) async fn response(cfg: &Config, command: ResponseCommand) -> anyhow::Result<i32> {
    let ResponseCommand::Add {
        kind,
        touch,
        contact,
        channel,
        at,
        id,
    } = command;
    let bad = |msg: String| -> anyhow::Result<i32> {
        eprintln!("rapport: {msg}");
        Ok(rapport::exit::DATAERR)
    };
    let kind: ResponseKind = match kind.parse() {
        Ok(k) => k,
        Err(e) => return bad(format!("--kind: {e}")),
    };
    let contact = match contact.as_deref().map(ContactId::parse).transpose() {
        Ok(c) => c,
        Err(e) => return bad(format!("--contact: {e}")),
    };
    if touch.is_none() && (contact.is_none() || channel.is_none()) {
        return bad("a response needs --touch, or --contact and --channel".into());
    }
    let channel = match channel.as_deref().map(str::parse::<Channel>).transpose() {
        Ok(c) => c,
        Err(e) => return bad(format!("--channel: {e}")),
    };
    let now = chrono::Utc::now();
    let at = match at.as_deref().map(|a| parse_instant("--at", a)).transpose() {
        Ok(t) => t.unwrap_or(now),
        Err(e) => return bad(e),
    };
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    rapport::with_store!(store, |store| {
        let input = Inbound {
            id,
            kind,
            touch: touch.map(TouchId::from_stored),
            contact,
            channel,
            at,
            source: "cli",
        };
        let result = feedback::respond(&store, cfg, input, now).await;
        store.close().await;
        match result {
            Ok(recorded) => {
                let r = recorded.record();
                let what = match recorded {
                    Recorded::New(_) => "recorded",
                    Recorded::Known(_) => "already recorded",
                };
                println!(
                    "{what}: {} from {} by {} at {}{}",
                    r.kind,
                    r.contact,
                    r.channel,
                    fmt_ts(r.at),
                    r.touch
                        .as_ref()
                        .map(|t| format!(", answering {t}"))
                        .unwrap_or_default()
                );
                for e in &r.effects {
                    println!("  {e}");
                }
                Ok(0)
            }
            Err(feedback::FeedbackError::Store(e)) => Err(e.into()),
            Err(e) => bad(e.to_string()),
        }
    })
}

/// The summary lines, timeline entries (instant, line), and why each suppressed
/// address is (channel, why).
pub(super) struct LearnedView {
    pub(super) summary: Vec<String>,
    pub(super) timeline: Vec<(DateTime<Utc>, String)>,
    pub(super) suppressed: Vec<(Channel, String)>,
}

pub(super) async fn learned<S: Relationships>(
    store: &S,
    cfg: &Config,
    c: &Contact,
    now: DateTime<Utc>,
) -> Result<LearnedView, StoreError> {
    let rel = store.relationship(&c.id).await?.unwrap_or_default();
    let model = &cfg.learning.model;
    let mut summary = learning::describe(
        &rel.state,
        &c.tier,
        model,
        c.zone(cfg.rules.defaults.timezone),
    );
    summary.push(format!(
        "engagement {:.1}{}{}",
        rel.state.engagement(model, now),
        match rel.state.ignored_in_row() {
            0 => String::new(),
            n => format!(", {n} ignored in a row"),
        },
        if rel.state.is_sunset() {
            ", sunset: no check-ins until they interact"
        } else {
            ""
        },
    ));
    if !cfg.learning.enabled {
        summary.push("learning is off (learning.enabled = false)".into());
    }
    let mut timeline = Vec::new();
    let responses = store.responses_for_contact(&c.id).await?;
    let suppressed = [
        (Channel::Email, c.email_consent),
        (Channel::Sms, c.sms_consent),
    ]
    .into_iter()
    .filter(|(_, consent)| !consent)
    .filter_map(|(channel, _)| Some((channel, why_suppressed(&responses, channel)?)))
    .collect();
    for r in responses {
        let touch = r
            .touch
            .as_ref()
            .map(|t| format!(" to {t}"))
            .unwrap_or_default();
        let effects = if r.effects.is_empty() {
            String::new()
        } else {
            format!(": {}", r.effects.join("; "))
        };
        timeline.push((
            r.at,
            format!(
                "reply  {} by {}{touch} ({}){effects}",
                r.kind,
                r.channel,
                r.detail.as_deref().unwrap_or(&r.source)
            ),
        ));
    }
    for n in rel.notes {
        timeline.push((n.at, format!("note   {}", n.text)));
    }
    Ok(LearnedView {
        summary,
        timeline,
        suppressed,
    })
}

/// Why `channel`'s address is suppressed, from the latest response that suppressed it:
/// `hard bounce (smtp 550 5.1.1) on 2026-12-07`, `complaint (api) on ...`.
fn why_suppressed(responses: &[ResponseRecord], channel: Channel) -> Option<String> {
    let r = responses
        .iter()
        .filter(|r| r.kind.suppresses(r.channel, channel))
        .max_by_key(|r| r.at)?;
    Some(format!(
        "{} ({}) on {}",
        r.kind.label(),
        r.detail.as_deref().unwrap_or(&r.source),
        r.at.format("%Y-%m-%d")
    ))
}
