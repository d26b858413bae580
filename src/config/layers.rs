//! Layering: default file, then `--config`, then `RAPPORT__SECTION__KEY` environment
//! variables. Each leaf remembers which layer set it, so errors can name the file.

use std::{collections::HashMap, path::Path};

use toml::{Table, Value};

/// The merged document plus, for every leaf path, the layer that set it last.
#[derive(Debug, Default)]
pub(super) struct Layered {
    pub doc: Table,
    pub sources: HashMap<String, String>,
}

impl Layered {
    /// The layer that set `path` or, failing that, its nearest ancestor.
    pub(super) fn source_of(&self, path: &str) -> &str {
        let mut p = path;
        loop {
            if let Some(s) = self.sources.get(p) {
                return s;
            }
            // An array element (`caps[0]`) comes from wherever the array does.
            if let Some((array, _)) = p.strip_suffix(']').and_then(|q| q.rsplit_once('[')) {
                p = array;
                continue;
            }
            match p.rsplit_once('.') {
                Some((parent, _)) => p = parent,
                None => return "config",
            }
        }
    }

    pub(super) fn merge_toml(&mut self, text: &str, source: &str) -> Result<(), String> {
        let table: Table =
            toml::from_str(text).map_err(|e| format!("{source}: {}", e.message()))?;
        merge(&mut self.doc, table, "", source, &mut self.sources);
        Ok(())
    }

    pub(super) fn merge_file(&mut self, path: &Path) -> Result<(), String> {
        let label = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{label}: cannot read: {e}"))?;
        self.merge_toml(&text, &label)
    }

    /// `RAPPORT__STORAGE__URL=...` sets `storage.url`. Values that parse as TOML (numbers,
    /// booleans, arrays, quoted strings) keep their type; anything else is a string.
    pub(super) fn merge_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), String> {
        let mut vars: Vec<_> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("RAPPORT__"))
            .collect();
        vars.sort();
        for (key, raw) in vars {
            let segments: Vec<String> = key["RAPPORT__".len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            if segments.iter().any(String::is_empty) {
                return Err(format!("environment {key}: empty key segment"));
            }
            // A TOML value when it reads as one, else the text itself. A leading `+`
            // stays text: it is a phone number (`+15550000000`), never a signed number
            // in this config.
            let value = if raw.trim_start().starts_with('+') {
                Value::String(raw)
            } else {
                toml::from_str::<Table>(&format!("v = {raw}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .unwrap_or(Value::String(raw))
            };
            let mut table = Table::new();
            let (last, parents) = segments.split_last().expect("at least one segment");
            let mut cursor = &mut table;
            for seg in parents {
                cursor = cursor
                    .entry(seg.clone())
                    .or_insert_with(|| Value::Table(Table::new()))
                    .as_table_mut()
                    .expect("fresh table");
            }
            cursor.insert(last.clone(), value);
            merge(
                &mut self.doc,
                table,
                "",
                &format!("environment {key}"),
                &mut self.sources,
            );
        }
        Ok(())
    }
}

fn merge(
    into: &mut Table,
    from: Table,
    prefix: &str,
    source: &str,
    sources: &mut HashMap<String, String>,
) {
    for (k, v) in from {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (into.get_mut(&k), v) {
            (Some(Value::Table(existing)), Value::Table(new)) => {
                merge(existing, new, &path, source, sources)
            }
            (_, v) => {
                mark(&v, &path, source, sources);
                into.insert(k, v);
            }
        }
    }
}

fn mark(v: &Value, path: &str, source: &str, sources: &mut HashMap<String, String>) {
    sources.insert(path.to_owned(), source.to_owned());
    if let Value::Table(t) = v {
        for (k, v) in t {
            mark(v, &format!("{path}.{k}"), source, sources);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win_and_sources_are_tracked() {
        let mut l = Layered::default();
        l.merge_toml(
            "[storage]\nurl = \"a\"\nbackend = \"sqlite\"\n",
            "base.toml",
        )
        .unwrap();
        l.merge_toml("[storage]\nurl = \"b\"\n", "ops.toml")
            .unwrap();
        l.merge_env([
            (
                "RAPPORT__DEFAULTS__SEND_WINDOW".to_owned(),
                "00:00-24:00".to_owned(),
            ),
            ("RAPPORT__DISPATCH__BATCH_SIZE".to_owned(), "7".to_owned()),
            (
                "RAPPORT__CHANNELS__SMS__FROM".to_owned(),
                "+15550000000".to_owned(),
            ),
            ("HOME".to_owned(), "/root".to_owned()),
        ])
        .unwrap();
        assert_eq!(
            l.doc["channels"]["sms"]["from"].as_str(),
            Some("+15550000000"),
            "a phone number stays text"
        );
        assert_eq!(l.doc["storage"]["url"].as_str(), Some("b"));
        assert_eq!(l.doc["storage"]["backend"].as_str(), Some("sqlite"));
        assert_eq!(
            l.doc["defaults"]["send_window"].as_str(),
            Some("00:00-24:00")
        );
        assert_eq!(l.doc["dispatch"]["batch_size"].as_integer(), Some(7));
        assert_eq!(l.source_of("storage.url"), "ops.toml");
        assert_eq!(l.source_of("storage.backend"), "base.toml");
        assert_eq!(
            l.source_of("dispatch.batch_size"),
            "environment RAPPORT__DISPATCH__BATCH_SIZE"
        );
        assert_eq!(l.source_of("nowhere.x"), "config");
    }
}
