//! The HTTP API: in-process servers on port 0 over SQLite and Redis, called with
//! reqwest (every endpoint's success path, auth, each error status, a sweep of malformed
//! bodies that must change nothing, readiness), one-click unsubscribe, the API inside a
//! whole `App`, and `rapport run --role` through the real binary.
//!
//! Scenarios are `async fn(Backend)`, instantiated for both backends by `both!`.

mod batch;
mod clicks;
mod deletion;
mod erasure;
mod harness;
mod history;
mod idempotency;
mod lifecycle;
mod locked;
mod outage;
mod refusals;
mod resources;
mod responses;
mod silence;
#[path = "../support/mod.rs"]
mod support;
mod touches;
mod twilio;
mod unsubscribe;

use batch::a_batch_answers_each_line;
use clicks::clicks_are_recorded_and_redirected;
use deletion::delete_erases_and_a_reimport_is_not_marketed;
use harness::Backend;
use idempotency::idempotency_keys_replay_refuse_and_forgive;
use lifecycle::the_app_serves_the_api_beside_its_workers;
use refusals::{
    malformed_input_is_refused_and_changes_nothing,
    not_found_conflict_too_large_and_wrong_media_type, tokens_are_required_and_compared_exactly,
    without_tokens_only_the_public_endpoints_answer,
};
use resources::{
    an_event_for_an_unknown_contact_is_422_naming_contact,
    events_plan_once_and_show_on_the_timeline, probes_and_the_document_are_public,
    put_creates_then_replaces_and_get_shows_the_contact,
};
use responses::{
    bad_responses_are_refused_naming_the_field,
    negative_responses_act_at_once_and_survive_a_reimport,
    responses_are_attributed_recorded_once_and_promote_once,
};
use silence::{
    silence_becomes_ignored_then_backs_off_then_sunsets, touches_sent_before_learning_teach_nothing,
};
use touches::touches_list_filters_and_refuses_bad_queries;
use twilio::{
    inbound_sms_keywords_and_replies, status_callbacks_teach_what_failed,
    twilio_signatures_are_checked,
};
use unsubscribe::{
    a_body_that_is_not_one_click_is_400_and_changes_nothing, a_link_from_a_sent_email_unsubscribes,
    one_click_withdraws_email_consent_in_either_encoding,
    the_page_shows_a_form_and_changes_nothing, tokens_that_lead_to_nobody_get_one_404,
};

macro_rules! both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $case() {
                    super::$case::<rapport::store::SqliteStore>(super::Backend::Sqlite).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $case() {
                    super::$case::<rapport::store::RedisStore>(super::Backend::Redis).await;
                }
            )*
        }
    };
}

both!(
    touches_sent_before_learning_teach_nothing,
    clicks_are_recorded_and_redirected,
    inbound_sms_keywords_and_replies,
    twilio_signatures_are_checked,
    status_callbacks_teach_what_failed,
    responses_are_attributed_recorded_once_and_promote_once,
    negative_responses_act_at_once_and_survive_a_reimport,
    bad_responses_are_refused_naming_the_field,
    silence_becomes_ignored_then_backs_off_then_sunsets,
    delete_erases_and_a_reimport_is_not_marketed,
    touches_list_filters_and_refuses_bad_queries,
    a_batch_answers_each_line,
    idempotency_keys_replay_refuse_and_forgive,
    probes_and_the_document_are_public,
    put_creates_then_replaces_and_get_shows_the_contact,
    events_plan_once_and_show_on_the_timeline,
    an_event_for_an_unknown_contact_is_422_naming_contact,
    tokens_are_required_and_compared_exactly,
    without_tokens_only_the_public_endpoints_answer,
    not_found_conflict_too_large_and_wrong_media_type,
    malformed_input_is_refused_and_changes_nothing,
    the_app_serves_the_api_beside_its_workers,
    one_click_withdraws_email_consent_in_either_encoding,
    the_page_shows_a_form_and_changes_nothing,
    tokens_that_lead_to_nobody_get_one_404,
    a_body_that_is_not_one_click_is_400_and_changes_nothing,
    a_link_from_a_sent_email_unsubscribes,
);
