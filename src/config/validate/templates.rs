//! The templates each enabled occasion needs, found on disk at validation time.

use crate::domain::Channel;
use std::path::Path;

use super::{Issues, names};
use crate::config::{Occasion, Tier};

/// Every enabled occasion needs `templates/<occasion>/<channel>.hbs`, or a variant for
/// every tier; a variant naming an unknown tier is a typo worth reporting.
pub(super) fn check_templates(
    issues: &mut Issues<'_>,
    dir: &Path,
    occasions: &[Occasion],
    tiers: &[Tier],
) {
    for o in occasions.iter().filter(|o| o.enabled) {
        for channel in &o.channels {
            check_channel_templates(issues, dir, o, *channel, tiers);
        }
    }
}

/// `<occasion>/<channel>.hbs`, or a tier variant for every tier that allows the channel.
fn check_channel_templates(
    issues: &mut Issues<'_>,
    dir: &Path,
    o: &Occasion,
    wanted: Channel,
    tiers: &[Tier],
) {
    {
        let folder = dir.join(&o.name);
        let base = folder.join(format!("{wanted}.hbs"));
        let mut variants = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                let Some(stem) = file.strip_suffix(".hbs") else {
                    continue;
                };
                if let Some((channel, tier)) = stem.split_once('.') {
                    if channel == wanted.as_str() {
                        if tiers.iter().any(|t| t.name == tier) {
                            variants.push(tier.to_owned());
                        } else {
                            issues.push(
                                &format!("occasions.{}", o.name),
                                format!(
                                    "template {} names unknown tier {tier:?} (known: {})",
                                    folder.join(&file).display(),
                                    names(tiers)
                                ),
                            );
                        }
                    }
                }
            }
        }
        let all_tiers_covered = tiers
            .iter()
            .filter(|t| t.allows_channel(wanted))
            .all(|t| variants.contains(&t.name));
        if !base.is_file() && !all_tiers_covered {
            issues.push(
                &format!("occasions.{}", o.name),
                format!(
                    "missing template {} (or a {wanted}.<tier>.hbs for every tier that allows {wanted})",
                    base.display(),
                ),
            );
        }
    }
}
