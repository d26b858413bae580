//! What is wrong with a configuration: every problem, each with its file and key path.

use std::fmt;

/// One problem with the configuration: where it came from, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub source: String,
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.path, self.message)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem(s)):",
            self.issues.len()
        )?;
        for i in &self.issues {
            writeln!(f, "  {i}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    pub(super) fn single(source: &str, path: &str, message: impl Into<String>) -> Self {
        Self {
            issues: vec![ConfigIssue {
                source: source.to_owned(),
                path: path.to_owned(),
                message: message.into(),
            }],
        }
    }
}
