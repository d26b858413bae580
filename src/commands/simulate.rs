//! `rapport simulate`: the planners, the policy and (with learning) the learner over
//! simulated days for a contacts file; nothing is sent or stored.

use chrono::{DateTime, Utc};
use rapport::{
    cli::{LearningMode, SimulateArgs},
    config::Config,
    exit, ingest,
    simulate::{self, ResponseModel, SimOptions},
};

use super::parse_instant;

pub(super) fn run(cfg: &Config, args: &SimulateArgs) -> anyhow::Result<i32> {
    let start = match start(args.start.as_deref()) {
        Some(t) => t,
        None => {
            let raw = args.start.as_deref().unwrap_or_default();
            eprintln!("rapport: --start {raw:?} is neither YYYY-MM-DD nor an RFC 3339 instant");
            return Ok(exit::USAGE);
        }
    };
    let days = args.days;
    if days == 0 || days > 3650 {
        eprintln!("rapport: --days must be between 1 and 3650");
        return Ok(exit::USAGE);
    }
    let (people, mut problems) = ingest::read_contacts(cfg, &args.contacts)?;
    for e in &problems {
        eprintln!("{}: {e}", args.contacts.display());
    }
    let happenings = match &args.events {
        None => Vec::new(),
        Some(path) => {
            let (good, bad) = ingest::read_events(path)?;
            for e in &bad {
                eprintln!("{}: {e}", path.display());
            }
            problems.extend(bad);
            good
        }
    };
    if !problems.is_empty() {
        eprintln!(
            "rapport: {} bad row(s); fix them to simulate the whole population",
            problems.len()
        );
        return Ok(exit::DATAERR);
    }
    let mode = args.learning.unwrap_or(if cfg.learning.enabled {
        LearningMode::On
    } else {
        LearningMode::Off
    });
    let opts = SimOptions {
        start,
        days,
        model: ResponseModel::default().with_seed(args.seed),
        learning: mode == LearningMode::On,
    };
    let began = std::time::Instant::now();
    let printed = match mode {
        LearningMode::Both => {
            simulate::compare(cfg, &people, &happenings, &opts).map(|c| show(&c, args.json))
        }
        _ => simulate::run(cfg, &people, &happenings, &opts).map(|r| show(&r, args.json)),
    };
    match printed {
        Ok(shown) => shown?,
        Err(bad) => {
            for b in &bad {
                eprintln!("{}: {b}", args.contacts.display());
            }
            eprintln!(
                "rapport: {} bad sim_* attribute(s); fix them to simulate the whole population",
                bad.len()
            );
            return Ok(exit::DATAERR);
        }
    }
    if !args.json {
        println!(
            "simulated {} contact(s) over {days} day(s) from {} in {:.1}s; nothing was sent or stored",
            people.len(),
            start.format("%Y-%m-%d"),
            began.elapsed().as_secs_f64()
        );
    }
    Ok(0)
}

/// `None` (today, UTC midnight), `YYYY-MM-DD` (UTC midnight) or an RFC 3339 instant.
fn start(raw: Option<&str>) -> Option<DateTime<Utc>> {
    let midnight = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    match raw {
        None => Some(midnight(Utc::now().date_naive())),
        Some(raw) => match chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            Ok(d) => Some(midnight(d)),
            Err(_) => parse_instant("--start", raw).ok(),
        },
    }
}

fn show<R: std::fmt::Display + serde::Serialize>(report: &R, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
