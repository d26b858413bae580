//! `rapport plan --at T` tells the truth: a contact whose relationship was learned
//! through the public interface (sent notes answered by text, `rapport response add`)
//! is shown going out at the instant and on the channel the daemon's planner then
//! records at T, on both backends. (Before, the dry run planned without what was
//! learned: at the window's opening, where the daemon recorded the learned hour.)

use chrono::{DateTime, Duration, Utc};
use rapport::store::{Coordination, Ledger};
use rapport::{
    config::Config,
    domain::{ContactId, TouchId},
    planner::runner,
    store::AnyStore,
};

#[path = "support/cli_env.rs"]
#[allow(dead_code, unreachable_pub)]
mod cli_env;
#[path = "support/redis.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_server;
#[path = "support/sent.rs"]
#[allow(dead_code, unreachable_pub)]
mod sent;

use cli_env::{Env, assert_has};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The morning of Ada's birthday, before her send window opens.
const T: &str = "2026-07-14T06:00:00Z";

async fn store_of(env: &Env) -> (Config, AnyStore) {
    let vars = env.vars.iter().cloned();
    let cfg = Config::load_with(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/rapport.toml")),
        None,
        vars,
    )
    .unwrap();
    let store = AnyStore::open(&cfg.storage).await.unwrap();
    (cfg, store)
}

async fn the_dry_run_shows_what_the_daemon_records(mut env: Env) {
    env.set("RAPPORT__TIERS__FRIEND__CHANNELS", "[\"email\", \"sms\"]");
    env.import(
        "c.csv",
        "id,first_name,email,phone,timezone,birthday,tier\n\
         ada,Ada,ada@example.com,+14155550101,UTC,--07-14,friend\n",
    )
    .expect(0);
    // Six texts in June, each answered at about 15:00: she answers texts, at three.
    let (_, store) = store_of(&env).await;
    rapport::with_store!(store, |store| {
        for day in 1..=6 {
            let at = utc(&format!("2026-06-{day:02}T10:00:00Z"));
            sent::sent(&store, "ada", "check_in", &format!("june{day}"), "sms", at).await;
        }
        store.close().await;
    });
    for day in 1..=6 {
        let at = format!("2026-06-{day:02}T15:{:02}:00Z", day * 5);
        env.run(&[
            "response",
            "add",
            "--kind",
            "reply",
            "--contact",
            "ada",
            "--channel",
            "sms",
            "--at",
            &at,
        ])
        .expect(0);
    }
    let show = env.show("ada").expect(0);
    assert_has(&show.stdout, "answers around 15:00");

    let plan = env.run(&["plan", "--at", T]).expect(0);
    let line = plan
        .stdout
        .lines()
        .find(|l| l.contains("birthday:ada:2026"))
        .unwrap_or_else(|| panic!("no birthday line:\n{}", plan.stdout))
        .to_owned();

    // The daemon's planner, at T.
    let (cfg, store) = store_of(&env).await;
    let touch = rapport::with_store!(store, |store| {
        let birthday = cfg.rules.occasion("birthday").unwrap();
        let report = runner::run_once(&store, &cfg, birthday, utc(T))
            .await
            .unwrap();
        assert_eq!(report.new, 1);
        let id = TouchId::derive("birthday", &ContactId::parse("ada").unwrap(), "2026");
        let touch = store.get_touches(&[id]).await.unwrap().remove(0);
        store.close().await;
        touch
    });
    assert_eq!(
        touch.scheduled_at,
        utc(T) + Duration::hours(9),
        "the learned hour: 15:00, not the window's opening"
    );
    let expected = format!(
        "would go out by {} at {}",
        touch.channel,
        touch.scheduled_at.format("%Y-%m-%d %H:%M:%SZ")
    );
    assert!(
        line.contains(&expected),
        "the dry run said {line:?}; the daemon recorded {expected:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_the_dry_run_shows_what_the_daemon_records() {
    the_dry_run_shows_what_the_daemon_records(Env::new()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_the_dry_run_shows_what_the_daemon_records() {
    let mut env = Env::new();
    env.set("RAPPORT__STORAGE__BACKEND", "redis");
    env.set("RAPPORT__STORAGE__URL", redis_server::shared_url());
    env.set(
        "RAPPORT__STORAGE__PREFIX",
        redis_server::unique_prefix("plan"),
    );
    the_dry_run_shows_what_the_daemon_records(env).await;
}
