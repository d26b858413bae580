//! What the simulated contacts did with what they got (answers, opt-outs) and, with
//! learning on, what was learned about them; and two runs side by side.

use std::{collections::BTreeMap, fmt};

use serde::Serialize;

use super::SimReport;

/// Touches and their outcomes. A touch counts under the tier its contact was in when it
/// was sent, and so do its answer and opt-out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponseStats {
    pub sent: u64,
    /// Engaged answers (replies, clicks) that came before the period ended.
    pub responses: u64,
    /// `responses / sent`; a touch sent in the last days whose answer would come after
    /// the end counts as unanswered.
    pub response_rate: f64,
    /// Unsubscribes and complaints.
    pub opt_outs: u64,
    /// `opt_outs / sent`.
    pub opt_out_rate: f64,
    /// Of `opt_outs`, complaints (they suppress the contact altogether).
    pub complaints: u64,
    /// Touches without an answer when their response window closed.
    pub ignored: u64,
}

impl ResponseStats {
    pub(crate) fn add(&mut self, other: &Self) {
        self.sent += other.sent;
        self.responses += other.responses;
        self.opt_outs += other.opt_outs;
        self.complaints += other.complaints;
        self.ignored += other.ignored;
    }

    pub(crate) fn finish(&mut self) {
        let per_sent = |n: u64| ratio(n, self.sent);
        self.response_rate = per_sent(self.responses);
        self.opt_out_rate = per_sent(self.opt_outs);
    }
}

/// What learning made of the contacts (learning runs only).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LearnedStats {
    /// Contacts in the tier when the period ended (channel and hour count them there).
    pub contacts: u64,
    /// The channel with the best answer rate learned, among the occasions' channels the
    /// contact could be reached on at the end: `contacts` counts those with two or
    /// more, `learned` those of them with two or more answers.
    pub channel: Match,
    /// The hour the contact answers at, once `min_hour_observations` answers were seen.
    pub hour: Match,
    /// Moves out of the tier, by `from -> to`.
    pub tier_moves: BTreeMap<String, u64>,
    /// Contacts whose check-ins were sunset while in the tier.
    pub sunsets: u64,
    /// Contacts whose check-ins were backed off (not sunset) when the period ended.
    pub backed_off: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Match {
    /// Contacts it could be learned for.
    pub contacts: u64,
    /// Of those, contacts with enough answers to say.
    pub learned: u64,
    /// Of those, contacts for whom it matches the truth.
    pub right: u64,
    /// `right / contacts`.
    pub share: f64,
    /// `right / learned`.
    pub accuracy: f64,
}

impl Match {
    pub(crate) fn count(&mut self, learned: bool, right: bool) {
        self.contacts += 1;
        self.learned += u64::from(learned);
        self.right += u64::from(learned && right);
    }

    fn add(&mut self, other: &Self) {
        self.contacts += other.contacts;
        self.learned += other.learned;
        self.right += other.right;
    }

    fn finish(&mut self) {
        self.share = ratio(self.right, self.contacts);
        self.accuracy = ratio(self.right, self.learned);
    }
}

impl LearnedStats {
    pub(crate) fn add(&mut self, other: &Self) {
        self.contacts += other.contacts;
        self.channel.add(&other.channel);
        self.hour.add(&other.hour);
        for (k, n) in &other.tier_moves {
            *self.tier_moves.entry(k.clone()).or_default() += n;
        }
        self.sunsets += other.sunsets;
        self.backed_off += other.backed_off;
    }

    pub(crate) fn finish(&mut self) {
        self.channel.finish();
        self.hour.finish();
    }
}

fn ratio(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The same contacts, events and answers' dice, with learning off and on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub seed: u64,
    pub off: SimReport,
    pub on: SimReport,
}

impl fmt::Display for ResponseStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} touches answered ({}), {} ignored; {} opt-outs ({}), {} of them complaints",
            self.responses,
            self.sent,
            pct(self.response_rate),
            self.ignored,
            self.opt_outs,
            pct(self.opt_out_rate),
            self.complaints
        )
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "right for {} of {} ({}); {} learned, {} of them right",
            self.right,
            self.contacts,
            pct(self.share),
            self.learned,
            pct(self.accuracy)
        )
    }
}

impl LearnedStats {
    /// The lines under a tier (or the whole population), indented by `pad`.
    pub(crate) fn lines(&self, f: &mut fmt::Formatter<'_>, pad: &str) -> fmt::Result {
        writeln!(f, "{pad}learned ({} contacts at the end):", self.contacts)?;
        writeln!(f, "{pad}  channel  {} (with a choice)", self.channel)?;
        writeln!(f, "{pad}  hour     {}", self.hour)?;
        let moves: Vec<String> = self
            .tier_moves
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let moves = if moves.is_empty() {
            "none".to_owned()
        } else {
            moves.join(", ")
        };
        writeln!(
            f,
            "{pad}  tier moves {moves}; {} sunsets; {} backed off at the end",
            self.sunsets, self.backed_off
        )
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "=== learning off ===")?;
        self.off.fmt(f)?;
        writeln!(f, "\n=== learning on ===")?;
        self.on.fmt(f)?;
        writeln!(
            f,
            "\n=== learning off vs on (seed {}, the same contacts) ===",
            self.seed
        )?;
        let w = self
            .off
            .tiers
            .iter()
            .map(|t| t.tier.len())
            .chain([5])
            .max()
            .unwrap_or(5);
        writeln!(
            f,
            "  {:<w$} {:>17} {:>17} {:>17} {:>17} {:>17}",
            "", "sent", "answered", "answer rate", "opt-outs", "opt-out rate"
        )?;
        writeln!(
            f,
            "  {:<w$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "tier", "off", "on", "off", "on", "off", "on", "off", "on", "off", "on"
        )?;
        let mut rows: Vec<(&str, &ResponseStats, Option<&ResponseStats>)> = self
            .off
            .tiers
            .iter()
            .map(|t| {
                let on = self.on.tier(&t.tier).map(|o| &o.responses);
                (t.tier.as_str(), &t.responses, on)
            })
            .collect();
        rows.push(("(all)", &self.off.responses, Some(&self.on.responses)));
        for (tier, off, on) in rows {
            let on = on.cloned().unwrap_or_default();
            writeln!(
                f,
                "  {tier:<w$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                off.sent,
                on.sent,
                off.responses,
                on.responses,
                pct(off.response_rate),
                pct(on.response_rate),
                off.opt_outs,
                on.opt_outs,
                pct(off.opt_out_rate),
                pct(on.opt_out_rate)
            )?;
        }
        Ok(())
    }
}
