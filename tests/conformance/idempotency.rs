//! Idempotency keys: one request takes a key, the answer kept under it is the one every
//! later request gets, and a key let go of before its answer can be taken again.

use std::{sync::Arc, time::Duration};

use rapport::store::{Idempotency, KeptAnswer};

use crate::{Backend, fixtures::t0};

pub(crate) async fn idempotency_keys_hold_one_answer<S: Backend>(store: Arc<S>) {
    let ttl = Duration::from_secs(3600);
    assert_eq!(
        store.begin_key("k1", "fp", ttl, t0()).await.unwrap(),
        Idempotency::Began
    );
    assert_eq!(
        store.begin_key("k1", "fp", ttl, t0()).await.unwrap(),
        Idempotency::InProgress {
            fingerprint: "fp".into()
        }
    );
    let answer = KeptAnswer {
        fingerprint: "fp".into(),
        status: 201,
        body: "{\"ok\":true}".into(),
    };
    store.keep_answer("k1", &answer, ttl, t0()).await.unwrap();
    store.forget_key("k1").await.unwrap();
    assert_eq!(
        store.begin_key("k1", "other", ttl, t0()).await.unwrap(),
        Idempotency::Done(answer)
    );
    // A key let go of can be taken again.
    assert_eq!(
        store.begin_key("k2", "fp", ttl, t0()).await.unwrap(),
        Idempotency::Began
    );
    store.forget_key("k2").await.unwrap();
    assert_eq!(
        store.begin_key("k2", "fp", ttl, t0()).await.unwrap(),
        Idempotency::Began
    );
    // Racing requests with one key: one takes it.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.begin_key("k3", "fp", ttl, t0()).await.unwrap() })
        })
        .collect();
    let mut began = 0;
    for r in racers {
        if r.await.unwrap() == Idempotency::Began {
            began += 1;
        }
    }
    assert_eq!(began, 1);
}
