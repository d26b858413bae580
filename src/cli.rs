//! The `rapport` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rapport",
    version,
    about = "Keeps customer relationships warm: personal notes at the right moment, by relationship tier."
)]
pub struct Cli {
    /// A config file layered over config/rapport.toml (env RAPPORT__SECTION__KEY wins over both).
    #[arg(long, global = true, env = "RAPPORT_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: the HTTP API, planners, reconciler and queue workers, until
    /// SIGTERM/SIGINT.
    Run {
        /// Which parts this process runs, to scale them apart.
        #[arg(long, value_enum, default_value_t = Role::All)]
        role: Role,
    },
    /// Validate the config and render every template for a sample contact of every tier.
    Check,
    /// Import contacts from a .csv or .jsonl file (upsert by id).
    Import {
        /// The file to import.
        file: PathBuf,
    },
    /// Print exactly what a contact would receive for an occasion.
    Preview {
        /// The occasion (e.g. birthday).
        occasion: String,
        /// The contact's id.
        #[arg(long)]
        contact: String,
        /// The channel.
        #[arg(long, default_value = "email")]
        channel: String,
    },
    /// Contacts.
    Contacts {
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// Responses from contacts (a reply, a click, an unsubscribe...), as
    /// `POST /v1/responses` takes them.
    Response {
        #[command(subcommand)]
        command: ResponseCommand,
    },
    /// Dry run: what would go out at an instant, and what the policy would hold or skip,
    /// and why (nothing is written).
    Plan {
        /// The instant, RFC 3339 (e.g. 2026-07-14T08:00:00Z).
        #[arg(long)]
        at: String,
    },
    /// The store's identity: its status, and adopting a store that was lost (it came
    /// back empty or different) so planning and sending resume.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Dead letters: touches that failed for good, and retrying them.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
    /// Events on a contact's timeline (a purchase triggers a thank-you).
    Event {
        #[command(subcommand)]
        command: EventCommand,
    },
    /// Run the planners and the policy over simulated days, sending nothing, with
    /// contacts who answer as drawn from a seed, and print per tier what they would get
    /// and how they would answer: to tune a config before deploying it.
    Simulate(SimulateArgs),
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Contacts, .csv or .jsonl (the import format). Optional columns sim_channel,
    /// sim_hour, sim_rate and sim_opt_out fix a contact's simulated preferences.
    #[arg(long, value_name = "FILE")]
    pub contacts: PathBuf,
    /// How many days to simulate.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// The first day, YYYY-MM-DD (UTC midnight) or an RFC 3339 instant; default today.
    #[arg(long)]
    pub start: Option<String>,
    /// Events during the period, .jsonl: {"contact", "type", "id", "at", "data"?}.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The seed the contacts' preferences and answers are drawn from: the same seed,
    /// the same report.
    #[arg(long, default_value_t = crate::simulate::DEFAULT_SEED)]
    pub seed: u64,
    /// Whether learning steers channel, hour, cadence and tier; `both` runs the same
    /// contacts twice and prints them side by side. Default: `learning.enabled`.
    #[arg(long, value_enum)]
    pub learning: Option<LearningMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LearningMode {
    On,
    Off,
    Both,
}

/// The parts of the daemon a `rapport run` process takes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// The HTTP API, planners, reconciler and queue workers.
    All,
    /// Only the HTTP API: no planners, reconciler, queue pump or workers.
    Api,
    /// Everything but the HTTP API.
    Worker,
}

impl Role {
    pub fn runs_api(self) -> bool {
        matches!(self, Self::All | Self::Api)
    }
    pub fn runs_workers(self) -> bool {
        matches!(self, Self::All | Self::Worker)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Api => "api",
            Self::Worker => "worker",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// The store's identity, whether it is held after a loss and why, and its last
    /// adoption.
    Status,
    /// Takes the store as it is now as rapport's ledger after a loss (Redis restarted
    /// without persistence, flushed, failed over to an empty replica): the daemons
    /// resume. Import the contacts first. What was already due before now, for the
    /// contacts present now, is not sent again; contacts added later are planned as
    /// usual.
    Adopt {
        /// Send what was due before the adoption anyway (it may have been sent before
        /// the loss).
        #[arg(long)]
        resend_due: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// Touches that failed for good (retries used up, or a permanent failure), with
    /// the reason and the last error; never a message body or an address.
    List {
        /// At most this many, oldest failure first.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
    },
    /// Queue failed touches again (attempts from zero). Each is still sent at most once;
    /// one past its expiry cannot be retried and is left where it is.
    Retry {
        /// The touch id (as listed), e.g. birthday:c0001:2026.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Record an event (once per id) and plan the occasions it triggers.
    Add {
        /// The contact's id.
        #[arg(long)]
        contact: String,
        /// The event type, e.g. purchase.
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
        /// The event's id, unique per contact (e.g. the order number).
        #[arg(long)]
        id: String,
        /// When it happened, RFC 3339; default now.
        #[arg(long)]
        at: Option<String>,
        /// Data for templates, a JSON object ({{event.data.*}}).
        #[arg(long)]
        data: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResponseCommand {
    /// Record a response and learn from it: attributed to `--touch`, else to the last
    /// touch sent to `--contact` on `--channel`.
    Add {
        /// reply, click, positive, negative, unsubscribe (or stop), bounce_hard,
        /// bounce_soft, complaint.
        #[arg(long)]
        kind: String,
        /// The touch it answers.
        #[arg(long)]
        touch: Option<String>,
        /// The contact (needed without --touch).
        #[arg(long)]
        contact: Option<String>,
        /// The channel it came in on (needed without --touch).
        #[arg(long)]
        channel: Option<String>,
        /// When, RFC 3339; default now.
        #[arg(long)]
        at: Option<String>,
        /// Your id for it: the same id is recorded once.
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// A contact, its relationship budget and its timeline (events and touches).
    Show {
        /// The contact's id.
        id: String,
    },
}
