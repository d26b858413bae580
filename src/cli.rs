//! The `rapport` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Run the daemon: planners, reconciler and queue workers, until SIGTERM/SIGINT.
    Run,
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
    /// Dry run: the touches the planners would record at an instant (nothing is written).
    Plan {
        /// The instant, RFC 3339 (e.g. 2026-07-14T08:00:00Z).
        #[arg(long)]
        at: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// A contact and its touch ledger history.
    Show {
        /// The contact's id.
        id: String,
    },
}
