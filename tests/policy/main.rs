//! The relationship policy through the dispatcher, on both backends: what a contact
//! actually receives when touches compete for places (the minimum gap and priority, caps,
//! the send window, the tier's channels) and when events move the check-in clock.
//!
//! Each scenario is one `async fn(Backend)`, instantiated for SQLite and Redis by
//! `both!`. Time is a [`FixedClock`] moved by hand; "the daemon" is a step that dispatches
//! every touch due at that instant, as the queue would. Contacts are first seen at the
//! wall clock (`upsert_contacts` stamps it), so simulated time starts 40 days after the
//! real now, at a UTC midnight: the check-in clock has run by then.
//!
//! Scenarios: a check-in the day before a birthday (skipped, or held past the birthday
//! and its gap); a check-in yielding to two touches ahead together, and to one another
//! worker has claimed; one thank-you per purchase, after its delay; a purchase resetting
//! the check-in clock, and overtaking a planned check-in; a cap holding a touch to the
//! exact instant a place frees up (fitted into its window); the send window in the
//! contact's zone; a channel the tier does not allow; jobs mixing sends that read the
//! store with others.
//!
//! What the scenarios share is in `rig`; each behaviour's scenarios are a module of their
//! own.

#[path = "../support/backends.rs"]
mod backends;
mod caps;
mod check_in_clock;
#[path = "../support/ledger.rs"]
#[allow(dead_code, unreachable_pub)]
mod ledger;
mod priority;
#[path = "../support/redis.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_server;
mod rig;
mod send_window;
mod thank_you;
mod tier_channels;

use caps::{
    capped_touch_waits_exactly_for_its_place, capped_touch_waits_for_its_place_inside_its_window,
    claimed_birthday_keeps_its_place_from_a_lower_touch,
};
use check_in_clock::{
    check_in_and_thank_you_due_together, check_in_overtaken_by_a_purchase_is_not_sent,
    purchase_resets_the_check_in_clock,
};
use ledger::Backend;
use priority::{
    check_in_before_a_birthday_is_skipped, check_in_yields_to_every_touch_ahead_not_just_each_one,
    deferred_check_in_waits_for_the_birthday_and_its_gap,
};
use send_window::touch_outside_the_window_waits_for_it_in_the_contacts_zone;
use thank_you::{
    purchase_gives_one_thank_you_after_the_delay, thank_you_and_another_birthday_in_one_job,
};
use tier_channels::channel_the_tier_does_not_allow_is_skipped;

/// Every scenario on both backends.
macro_rules! both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case::<rapport::store::SqliteStore>(super::Backend::Sqlite).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case::<rapport::store::RedisStore>(super::Backend::Redis).await;
                }
            )*
        }
    };
}

both!(
    check_in_before_a_birthday_is_skipped,
    check_in_yields_to_every_touch_ahead_not_just_each_one,
    deferred_check_in_waits_for_the_birthday_and_its_gap,
    purchase_gives_one_thank_you_after_the_delay,
    purchase_resets_the_check_in_clock,
    check_in_overtaken_by_a_purchase_is_not_sent,
    check_in_and_thank_you_due_together,
    thank_you_and_another_birthday_in_one_job,
    capped_touch_waits_exactly_for_its_place,
    capped_touch_waits_for_its_place_inside_its_window,
    claimed_birthday_keeps_its_place_from_a_lower_touch,
    touch_outside_the_window_waits_for_it_in_the_contacts_zone,
    channel_the_tier_does_not_allow_is_skipped,
);
