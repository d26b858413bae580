//! Rendering: the Handlebars registry (strict mode), tier variants, partials, front matter.
//!
//! Files: `templates/<occasion>/<channel>.hbs`, tier variants `<channel>.<tier>.hbs`,
//! partials `templates/partials/<name>.hbs` (used as `{{> name}}`). An email template is
//! front matter with the `subject`, then the text body, then optionally a line
//! `--- html ---` and the HTML part.

mod context;
mod no_log;

use crate::domain::Channel;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use handlebars::Handlebars;

pub use context::{context, sample_contact, sample_event, with_event};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{path}: {message}")]
    Template { path: String, message: String },
    #[error("no {channel} template for occasion {occasion:?}")]
    Missing { occasion: String, channel: Channel },
    #[error("{name}: {message}")]
    Render { name: String, message: String },
}

/// What a contact receives by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Which file serves (occasion, channel, tier).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    occasion: String,
    channel: Channel,
    tier: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    file: PathBuf,
    has_html: bool,
}

/// All templates, compiled. Two registries because text and subjects must not be
/// HTML-escaped while the HTML part must be.
#[derive(Debug)]
pub struct Renderer {
    text: Handlebars<'static>,
    html: Handlebars<'static>,
    entries: BTreeMap<Key, Entry>,
}

impl Renderer {
    /// Loads and compiles every template under `dir`, reporting every broken file.
    pub fn load(dir: &Path) -> Result<Self, Vec<RenderError>> {
        let mut r = Self {
            text: registry(false),
            html: registry(true),
            entries: BTreeMap::new(),
        };
        let mut errors = Vec::new();
        let read = |p: &Path| {
            std::fs::read_dir(p).map(|rd| {
                let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                v.sort();
                v
            })
        };
        let top = match read(dir) {
            Ok(v) => v,
            Err(e) => {
                return Err(vec![RenderError::Template {
                    path: dir.display().to_string(),
                    message: format!("cannot read templates folder: {e}"),
                }]);
            }
        };
        for folder in top.iter().filter(|p| p.is_dir()) {
            let folder_name = file_name(folder);
            for file in read(folder).unwrap_or_default() {
                let name = file_name(&file);
                let Some(stem) = name.strip_suffix(".hbs") else {
                    continue;
                };
                if let Err(e) = r.add(&folder_name, stem, &file) {
                    errors.push(e);
                }
            }
        }
        if errors.is_empty() {
            Ok(r)
        } else {
            Err(errors)
        }
    }

    fn add(&mut self, folder: &str, stem: &str, file: &Path) -> Result<(), RenderError> {
        let path = file.display().to_string();
        let src = std::fs::read_to_string(file).map_err(|e| RenderError::Template {
            path: path.clone(),
            message: format!("cannot read: {e}"),
        })?;
        let bad = |message: String| RenderError::Template {
            path: path.clone(),
            message,
        };
        if folder == "partials" {
            for reg in [&mut self.text, &mut self.html] {
                reg.register_partial(stem, &src)
                    .map_err(|e| bad(e.to_string()))?;
            }
            return Ok(());
        }
        let (channel, tier) = match stem.split_once('.') {
            Some((c, t)) => (c, Some(t.to_owned())),
            None => (stem, None),
        };
        // A file named for no channel is still compiled (its mistakes are reported), but
        // serves nothing.
        let channel = channel.parse::<Channel>().ok();
        // Email has a subject (front matter) and maybe an HTML part; an SMS or a webhook
        // text is the whole file.
        let parts = if channel == Some(Channel::Email) {
            split_parts(&src).map_err(bad)?
        } else {
            Parts {
                subject: "",
                text: src.strip_prefix('\u{feff}').unwrap_or(&src),
                html: None,
            }
        };
        let name = format!("{folder}/{stem}");
        self.text
            .register_template_string(&format!("{name}#subject"), parts.subject)
            .map_err(|e| bad(format!("subject: {e}")))?;
        self.text
            .register_template_string(&format!("{name}#text"), parts.text)
            .map_err(|e| bad(format!("text body: {e}")))?;
        if let Some(html) = parts.html {
            self.html
                .register_template_string(&format!("{name}#html"), html)
                .map_err(|e| bad(format!("html part: {e}")))?;
        }
        let Some(channel) = channel else {
            return Ok(());
        };
        self.entries.insert(
            Key {
                occasion: folder.to_owned(),
                channel,
                tier,
            },
            Entry {
                name,
                file: file.to_owned(),
                has_html: parts.html.is_some(),
            },
        );
        Ok(())
    }

    /// The file that serves this tier: its variant if there is one, else the base.
    pub fn template_for(&self, occasion: &str, channel: Channel, tier: &str) -> Option<&Path> {
        self.entry(occasion, channel, tier)
            .map(|e| e.file.as_path())
    }

    fn entry(&self, occasion: &str, channel: Channel, tier: &str) -> Option<&Entry> {
        let key = |tier: Option<String>| Key {
            occasion: occasion.to_owned(),
            channel,
            tier,
        };
        self.entries
            .get(&key(Some(tier.to_owned())))
            .or_else(|| self.entries.get(&key(None)))
    }

    /// Occasions that have at least one template.
    pub fn occasions(&self) -> BTreeSet<String> {
        self.entries.keys().map(|k| k.occasion.clone()).collect()
    }

    /// The text of an SMS or a webhook: the whole template, surrounding whitespace
    /// trimmed (a trailing newline would cost an SMS character).
    pub fn render_text(
        &self,
        occasion: &str,
        channel: Channel,
        tier: &str,
        ctx: &serde_json::Value,
    ) -> Result<String, RenderError> {
        let entry = self
            .entry(occasion, channel, tier)
            .ok_or_else(|| RenderError::Missing {
                occasion: occasion.to_owned(),
                channel: channel.to_owned(),
            })?;
        let name = format!("{}#text", entry.name);
        let text = self
            .text
            .render(&name, ctx)
            .map_err(|e| RenderError::Render {
                name: format!("{}.hbs", entry.name),
                message: e.reason().to_string(),
            })?;
        let text = text.trim().to_owned();
        if text.is_empty() {
            return Err(RenderError::Render {
                name: format!("{}.hbs", entry.name),
                message: "the text rendered empty".into(),
            });
        }
        Ok(text)
    }

    pub fn render_email(
        &self,
        occasion: &str,
        tier: &str,
        ctx: &serde_json::Value,
    ) -> Result<RenderedEmail, RenderError> {
        let entry =
            self.entry(occasion, Channel::Email, tier)
                .ok_or_else(|| RenderError::Missing {
                    occasion: occasion.to_owned(),
                    channel: Channel::Email,
                })?;
        let render = |reg: &Handlebars<'static>, part: &str| {
            let name = format!("{}#{part}", entry.name);
            reg.render(&name, ctx).map_err(|e| RenderError::Render {
                name: format!("{}.hbs ({part})", entry.name),
                message: e.reason().to_string(),
            })
        };
        let subject = render(&self.text, "subject")?;
        // A subject is one header line: fold any newline a template produced.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        if subject.is_empty() {
            return Err(RenderError::Render {
                name: format!("{}.hbs (subject)", entry.name),
                message: "the subject rendered empty".into(),
            });
        }
        let text = render(&self.text, "text")?;
        let html = if entry.has_html {
            Some(render(&self.html, "html")?)
        } else {
            None
        };
        Ok(RenderedEmail {
            subject,
            text,
            html,
        })
    }
}

fn registry(escape_html: bool) -> Handlebars<'static> {
    let mut h = Handlebars::new();
    // Strict: a missing variable is an error, never a blank in someone's inbox.
    h.set_strict_mode(true);
    h.set_dev_mode(false);
    if !escape_html {
        h.register_escape_fn(handlebars::no_escape);
    }
    h.register_helper("log", Box::new(no_log::NoLog));
    h
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

struct Parts<'a> {
    subject: &'a str,
    text: &'a str,
    html: Option<&'a str>,
}

/// Front matter (`---` / `subject: ...` / `---`), text, optional `--- html ---` + HTML.
fn split_parts(src: &str) -> Result<Parts<'_>, String> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let rest = src
        .strip_prefix("---\n")
        .or_else(|| src.strip_prefix("---\r\n"))
        .ok_or("must start with front matter: a line ---, subject: ..., and a line ---")?;
    let end = rest
        .find("\n---\n")
        .or_else(|| rest.find("\n---\r\n"))
        .ok_or("front matter is not closed by a line ---")?;
    let front = &rest[..end];
    let body = rest[end + 1..].split_once('\n').map_or("", |(_, b)| b);
    let mut subject = None;
    for line in front
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        match line.split_once(':') {
            Some(("subject", v)) => subject = Some(v.trim()),
            Some((k, _)) => {
                return Err(format!("front matter: unknown key {k:?} (known: subject)"));
            }
            None => return Err(format!("front matter: expected `key: value`, got {line:?}")),
        }
    }
    let subject = subject.ok_or("front matter has no subject")?;
    let (text, html) = match body.find("\n--- html ---") {
        Some(i) => {
            let after = &body[i + 1..];
            let html = after.split_once('\n').map_or("", |(_, h)| h);
            (&body[..i + 1], Some(html))
        }
        None => match body.strip_prefix("--- html ---") {
            Some(h) => ("", Some(h.trim_start_matches(['\r', '\n']))),
            None => (body, None),
        },
    };
    Ok(Parts {
        subject,
        text,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split() {
        let p = split_parts("---\nsubject: Hi {{a}}\n---\nText\n--- html ---\n<p>x</p>\n").unwrap();
        assert_eq!(
            (p.subject, p.text, p.html),
            ("Hi {{a}}", "Text\n", Some("<p>x</p>\n"))
        );
        let p = split_parts("---\nsubject: S\n---\nOnly text\n").unwrap();
        assert_eq!((p.text, p.html), ("Only text\n", None));
        assert!(split_parts("no front matter").is_err());
        assert!(split_parts("---\nsubjet: x\n---\nbody").is_err());
        assert!(split_parts("---\n---\nbody").is_err());
    }
}
