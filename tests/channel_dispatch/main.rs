//! Channels through the dispatcher, on both backends, against real HTTP servers standing
//! in for the SMS API and the webhook receiver: a 21610 withdraws SMS consent and moves
//! the touch (and the next occasion) to email; a 410 disables the endpoint for every
//! later touch; a failing webhook is retried on its schedule under one `webhook-id`,
//! ends as a dead letter, and replays exactly once; Retry-After is honoured; a
//! permanent SMS failure with no channel left is a dead letter.
//!
//! Time is a [`FixedClock`] moved by hand; "the daemon" is a step that dispatches every
//! touch due at that instant, as its job would. Emails land in an outbox folder.

#[path = "../support/ledger.rs"]
#[allow(dead_code, unreachable_pub)]
mod ledger;
mod moving;
mod rig;
mod sms;
#[path = "../support/mod.rs"]
mod support;
mod waiting;
mod webhook;

// `ledger` finds the backends and the Redis test server here, at the crate root.
use support::{backends, redis as redis_server};

use ledger::Backend;
use moving::{
    a_contact_moved_to_a_tier_without_the_channel_gets_the_next_one,
    a_moved_touch_gets_the_new_channels_full_retries,
    every_channel_left_behind_is_named_on_the_touch,
};
use sms::{
    a_permanent_sms_failure_with_no_channel_left_is_a_dead_letter,
    an_sms_opt_out_withdraws_consent_and_moves_the_touch_to_email,
    an_sms_timed_out_after_sending_is_retried_once_then_a_dead_letter,
};
use waiting::{a_rate_limit_place_after_expiry_is_not_waited_for, retry_after_is_honoured};
use webhook::{
    a_failing_webhook_retries_on_schedule_then_is_a_dead_letter_replayed_once,
    a_webhook_410_disables_the_endpoint_for_later_touches,
};

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name::<rapport::store::SqliteStore>(super::Backend::Sqlite).await; })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name::<rapport::store::RedisStore>(super::Backend::Redis).await; })*
        }
    };
}

both!(
    an_sms_opt_out_withdraws_consent_and_moves_the_touch_to_email,
    a_webhook_410_disables_the_endpoint_for_later_touches,
    a_failing_webhook_retries_on_schedule_then_is_a_dead_letter_replayed_once,
    retry_after_is_honoured,
    a_permanent_sms_failure_with_no_channel_left_is_a_dead_letter,
    an_sms_timed_out_after_sending_is_retried_once_then_a_dead_letter,
    a_moved_touch_gets_the_new_channels_full_retries,
    a_contact_moved_to_a_tier_without_the_channel_gets_the_next_one,
    a_rate_limit_place_after_expiry_is_not_waited_for,
    every_channel_left_behind_is_named_on_the_touch,
);
