//! `rapport store status|adopt`: the store's identity, and adopting a store that was
//! lost (see `rapport::custody`).

use chrono::Utc;
use rapport::store::{Coordination, Ledger};
use rapport::{cli::StoreCommand, config::Config, custody, exit};

use super::{fmt_ts, open_store};

pub(super) async fn run(cfg: &Config, command: StoreCommand) -> anyhow::Result<i32> {
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    rapport::with_store!(store, |store| {
        let code = match command {
            StoreCommand::Status => status(&store).await?,
            StoreCommand::Adopt { resend_due } => adopt(&store, resend_due).await?,
        };
        store.close().await;
        Ok(code)
    })
}

async fn status<S: Coordination>(store: &S) -> anyhow::Result<i32> {
    let found = custody::identity(store).await?;
    match &found.id {
        Some(id) => println!("identity: {id}"),
        None => {
            println!("identity: none (no daemon has used this store yet, or it came back empty)")
        }
    }
    if let Some(a) = &found.adopted {
        println!(
            "adopted:  {} ({})",
            fmt_ts(a.at),
            if a.resend_due {
                "what was due before it is sent"
            } else {
                "what was due before it is not sent again"
            }
        );
    }
    match &found.lost {
        Some(why) => {
            println!("held:     {why}");
            println!(
                "          nothing is planned or sent; import the contacts, then run `rapport store adopt`"
            );
            Ok(exit::UNAVAILABLE)
        }
        None => {
            println!("held:     no");
            Ok(0)
        }
    }
}

async fn adopt<S: Ledger + Coordination>(store: &S, resend_due: bool) -> anyhow::Result<i32> {
    let before = custody::identity(store).await?;
    if before.lost.is_none() && before.id.is_some() {
        println!(
            "the store is not held (identity {}); adopting it anyway",
            before.id.as_deref().unwrap_or_default()
        );
    }
    let (adoption, settled) = custody::adopt(store, Utc::now(), resend_due).await?;
    println!(
        "store adopted at {}: identity {}",
        fmt_ts(adoption.at),
        adoption.id
    );
    if resend_due {
        println!("what was due before now will be sent (--resend-due)");
    } else {
        println!(
            "what was due before now, for the contacts in the store now, is not sent again ({settled} touch(es) in the ledger settled as skipped)"
        );
    }
    println!("running daemons resume within a few seconds");
    Ok(0)
}
