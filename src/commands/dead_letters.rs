//! `rapport dead-letters list|retry`: touches that failed for good, and another go.

use chrono::Utc;
use rapport::store::Coordination;
use rapport::{
    cli::DeadLetterCommand,
    config::Config,
    domain::{Touch, TouchId},
    exit,
    store::Store,
};

use super::{fmt_ts, open_store};

/// How many dead letters one page reads.
const PAGE: usize = 500;

pub(super) async fn run(cfg: &Config, command: DeadLetterCommand) -> anyhow::Result<i32> {
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    rapport::with_store!(store, |store| {
        let code = match command {
            DeadLetterCommand::List { limit } => list(&store, limit as usize).await?,
            DeadLetterCommand::Retry { id, all } => retry(&store, id.as_deref(), all).await?,
        };
        store.close().await;
        Ok(code)
    })
}

/// A failure reason reads `<why>: <last error>`; the split is shown as two columns.
fn split_reason(reason: &str) -> (&str, &str) {
    reason.split_once(": ").unwrap_or((reason, ""))
}

async fn list(store: &impl Store, limit: usize) -> anyhow::Result<i32> {
    let found = store.dead_letters(None, limit).await?;
    if found.is_empty() {
        println!("no dead letters");
        return Ok(0);
    }
    println!(
        "{:<40} {:<8} {:<8} {:>8}  {:<20}  {:<44}  LAST ERROR",
        "TOUCH", "CHANNEL", "STATUS", "ATTEMPTS", "FAILED AT", "REASON"
    );
    for t in &found {
        let (why, last) = split_reason(t.reason.as_deref().unwrap_or("(no reason recorded)"));
        println!(
            "{:<40} {:<8} {:<8} {:>8}  {:<20}  {:<44}  {last}",
            t.id.as_str(),
            t.channel,
            t.status.as_str(),
            t.attempts,
            fmt_ts(t.updated_at),
            why
        );
    }
    if found.len() == limit {
        println!("(the first {limit}; --limit N shows more)");
    }
    Ok(0)
}

async fn retry(store: &impl Store, id: Option<&str>, all: bool) -> anyhow::Result<i32> {
    let now = Utc::now();
    let wanted: Vec<Touch> = if all {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = store.dead_letters(after.as_ref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.updated_at, last.id.clone()));
            out.extend(page);
        }
        out
    } else {
        let id = TouchId::from_stored(id.unwrap_or_default().to_owned());
        let found = store.get_touches(std::slice::from_ref(&id)).await?;
        match found.into_iter().next() {
            None => {
                eprintln!("rapport: no touch with id {id}");
                return Ok(exit::DATAERR);
            }
            Some(t) if t.status.as_str() != "failed" => {
                eprintln!(
                    "rapport: touch {id} is {}, not a dead letter; nothing to retry",
                    t.status
                );
                return Ok(exit::DATAERR);
            }
            Some(t) => vec![t],
        }
    };
    let (live, stale): (Vec<&Touch>, Vec<&Touch>) = wanted.iter().partition(|t| t.expires_at > now);
    for t in &stale {
        eprintln!(
            "not retried: {} expired at {} (a late note is never sent)",
            t.id,
            fmt_ts(t.expires_at)
        );
    }
    let ids: Vec<TouchId> = live.iter().map(|t| t.id.clone()).collect();
    let revived = store.revive(&ids, now).await?;
    for id in &revived {
        println!("queued again: {id}");
    }
    println!(
        "{} touch(es) queued again, {} past expiry left as dead letters",
        revived.len(),
        stale.len()
    );
    Ok(if !all && revived.is_empty() {
        exit::DATAERR
    } else {
        0
    })
}
