//! The real `rapport` binary run in a fresh temp working directory (so the built-in
//! default config is the base layer) with a temp database: shared by the CLI tests.

use rapport::store::{Contacts, Coordination, SqliteStore};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_rapport");
pub const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
    /// Failed with an error, not a panic (101) or success.
    pub fn failed(self) -> Self {
        assert!(
            ![0, 101].contains(&self.code),
            "expected a clean failure: {self:#?}"
        );
        self
    }
}

/// A temp working dir plus the environment every run gets (and nothing inherited).
pub struct Env {
    pub dir: TempDir,
    pub vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let mut env = Self {
            dir,
            vars: Vec::new(),
        };
        env.set("RAPPORT__TEMPLATES__DIR", TEMPLATES);
        env.set("RAPPORT__STORAGE__URL", env.db_url());
        env.set(
            "RAPPORT__CHANNELS__EMAIL__OUTBOX_DIR",
            env.path_str("outbox"),
        );
        env
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn path_str(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.path_str("r.db"))
    }
    pub fn write(&self, name: &str, text: &str) -> String {
        fs::write(self.path(name), text).unwrap();
        self.path_str(name)
    }
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.into(), value.into()));
    }
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(self.dir.path(), args)
    }
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(cwd).args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("RAPPORT") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        let out = cmd.envs(self.vars.iter().cloned()).output().unwrap();
        Run {
            code: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
    /// Writes `text` to `name` in the temp dir and imports it by that relative name.
    pub fn import(&self, name: &str, text: &str) -> Run {
        self.write(name, text);
        self.run(&["import", name])
    }
    pub fn show(&self, id: &str) -> Run {
        self.run(&["contacts", "show", id])
    }
    /// Contacts in the store, read through the library after the binary has exited.
    pub fn count_contacts(&self) -> u64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        rt.unwrap().block_on(async {
            let store = SqliteStore::open(&self.db_url()).await.unwrap();
            let n = store.count_contacts().await.unwrap();
            store.close().await;
            n
        })
    }
}

pub fn assert_has(h: &str, n: &str) {
    assert!(h.contains(n), "missing {n:?} in:\n{h}");
}

pub fn assert_lacks(h: &str, n: &str) {
    assert!(!h.contains(n), "unexpected {n:?} in:\n{h}");
}
