//! [`Issues`]: where every problem is collected, and the checks of the value kinds
//! shared by every section (durations, send windows, caps, channel lists, counts).

use std::{str::FromStr, time::Duration};

use crate::domain::Channel;
use crate::{
    config::{Cap, ConfigIssue, Layered, parse_duration, raw::RawCap},
    domain::SendWindow,
};

/// The problems found so far, each filed under the file that set its key.
pub(super) struct Issues<'a> {
    pub(super) layered: &'a Layered,
    pub(super) list: Vec<ConfigIssue>,
}

impl<'a> Issues<'a> {
    pub(super) fn new(layered: &'a Layered) -> Self {
        Self {
            layered,
            list: Vec::new(),
        }
    }
    pub(super) fn push(&mut self, path: &str, message: impl Into<String>) {
        self.list.push(ConfigIssue {
            source: self.layered.source_of(path).to_owned(),
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// `path` is missing, unless a value there was already reported (and removed) as
    /// being of the wrong type.
    pub(super) fn missing(&mut self, path: &str, example: &str) {
        self.missing_for(path, path, example);
    }

    /// `path` is missing, required by the key at `cause` (`transport = "twilio"` needs
    /// an account SID): the problem is filed under the file that set `cause`.
    pub(super) fn missing_for(&mut self, path: &str, cause: &str, example: &str) {
        if !self.list.iter().any(|i| i.path == path) {
            self.list.push(ConfigIssue {
                source: self.layered.source_of(cause).to_owned(),
                path: path.to_owned(),
                message: format!("missing: {example}"),
            });
        }
    }

    pub(super) fn duration(
        &mut self,
        path: &str,
        raw: Option<&str>,
        default: Duration,
    ) -> Duration {
        match raw.map(parse_duration) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.push(path, e);
                default
            }
        }
    }

    pub(super) fn window(&mut self, path: &str, raw: Option<&str>) -> Option<SendWindow> {
        match raw.map(SendWindow::from_str) {
            None => None,
            Some(Ok(w)) => Some(w),
            Some(Err(e)) => {
                self.push(path, e.to_string());
                None
            }
        }
    }

    /// A list of `{count, per}` caps; each must allow at least one touch in a window
    /// longer than zero.
    pub(super) fn caps(&mut self, path: &str, raw: Option<&Vec<RawCap>>) -> Vec<Cap> {
        let mut out = Vec::new();
        for (i, c) in raw.into_iter().flatten().enumerate() {
            let at = format!("{path}[{i}]");
            let count = match c.count {
                None => {
                    self.missing(&format!("{at}.count"), "e.g. { count = 1, per = \"7d\" }");
                    continue;
                }
                Some(0) => {
                    self.push(&format!("{at}.count"), "must be at least 1 (to send nothing, disable the occasion or leave the channel out)");
                    continue;
                }
                Some(n) => n,
            };
            let Some(per) = c.per.as_deref() else {
                self.missing(&format!("{at}.per"), "e.g. { count = 1, per = \"7d\" }");
                continue;
            };
            match parse_duration(per) {
                Ok(d) if d.as_secs() >= 1 => out.push(Cap { count, per: d }),
                Ok(_) => self.push(&format!("{at}.per"), "must be at least 1s"),
                Err(e) => self.push(&format!("{at}.per"), e),
            }
        }
        out
    }

    pub(super) fn channel_list(&mut self, path: &str, raw: &[String]) -> Vec<Channel> {
        let mut out = Vec::new();
        for (i, c) in raw.iter().enumerate() {
            match c.parse::<Channel>() {
                Ok(c) => out.push(c),
                Err(e) => self.push(&format!("{path}[{i}]"), e.to_string()),
            }
        }
        out
    }

    pub(super) fn positive(&mut self, path: &str, v: Option<u32>, default: u32) -> u32 {
        match v {
            Some(0) => {
                self.push(path, "must be at least 1");
                default
            }
            Some(n) => n,
            None => default,
        }
    }
}
