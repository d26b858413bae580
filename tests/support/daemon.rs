//! Runs the real `rapport` binary against a temp folder: config, SQLite file, contacts.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_rapport");
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A temp workspace: `test.toml`, `r.db`, `contacts.csv`.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// `extra` is appended to a base config: SQLite in the temp dir, repo templates,
    /// whole-day send windows, a planner that ticks every second, fast retries, and no
    /// HTTP API (tests start several daemons at once; a test of the API sets
    /// `[api] listen = "127.0.0.1:0"` and reads the port from the log).
    pub fn new(smtp_url: &str, extra: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = format!(
            r#"
[storage]
url = "sqlite://{db}"
[api]
listen = ""
[defaults]
send_window = "00:00-24:00"
[templates]
dir = "{repo}/templates"
[tiers.acquaintance]
send_window = "00:00-24:00"
[occasions.birthday]
schedule = "* * * * * *"
[occasions.anniversary]
enabled = false
[channels.email]
transport = "smtp"
url = "{smtp_url}"
tls = "none"
timeout = "1s"
[dispatch]
backoff = "1s"
backoff_max = "2s"
lease = "4s"
reconcile_every = "1s"
poll_interval = "100ms"
drain_timeout = "5s"
"#,
            db = dir.path().join("r.db").display(),
            repo = REPO,
        );
        std::fs::write(dir.path().join("test.toml"), merge(&base, extra)).expect("write config");
        Workspace { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.path("r.db").display())
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .arg("--config")
            .arg(self.path("test.toml"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RAPPORT")) {
            c.env_remove(k);
        }
        c.env("RAPPORT_LOG", "info");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run rapport")
    }

    pub fn import_csv(&self, csv: &str) {
        std::fs::write(self.path("contacts.csv"), csv).expect("write csv");
        let out = self.run(&["import", &self.path("contacts.csv").display().to_string()]);
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `rapport run`, logging to `daemon-N.log`.
    pub fn start(&self, n: usize) -> Child {
        let log = std::fs::File::create(self.path(&format!("daemon-{n}.log"))).expect("log file");
        self.command()
            .arg("run")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn rapport run")
    }

    pub fn log(&self, n: usize) -> String {
        std::fs::read_to_string(self.path(&format!("daemon-{n}.log"))).unwrap_or_default()
    }

    /// A workspace whose store is a fresh key prefix on the Redis at `redis_url`, with
    /// `extra` appended; also returns that storage section, to open the ledger.
    pub fn redis(
        smtp_url: &str,
        redis_url: &str,
        extra: &str,
    ) -> (Workspace, rapport::config::StorageConfig) {
        let storage = rapport::config::StorageConfig {
            backend: rapport::config::StorageBackend::Redis,
            url: redis_url.to_owned(),
            prefix: super::redis::unique_prefix("r"),
        };
        let config = format!(
            "[storage]\nbackend = \"redis\"\nurl = \"{redis_url}\"\nprefix = \"{}\"\n{extra}",
            storage.prefix
        );
        (Workspace::new(smtp_url, &config), storage)
    }

    /// Waits for daemon `n`'s "api listening on ADDR" line and returns `http://ADDR`.
    pub fn api_base(&self, n: usize, child: &mut Child) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log(n);
            if let Some(rest) = log.split("api listening on ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                return format!("http://{addr}");
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("rapport exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "no api address in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Later tables in `extra` override the base: TOML does not allow a table twice, so
/// merge by dropping base keys that `extra` sets again.
fn merge(base: &str, extra: &str) -> String {
    let mut doc: toml::Table = toml::from_str(base).expect("base config");
    let extra: toml::Table = toml::from_str(extra).expect("extra config");
    fn deep(into: &mut toml::Table, from: toml::Table) {
        for (k, v) in from {
            match (into.get_mut(&k), v) {
                (Some(toml::Value::Table(a)), toml::Value::Table(b)) => deep(a, b),
                (_, v) => {
                    into.insert(k, v);
                }
            }
        }
    }
    deep(&mut doc, extra);
    toml::to_string(&doc).expect("serialize config")
}

pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig} failed");
}

/// Waits for the process to exit; panics after `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("rapport did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the daemon if a test panics before stopping it.
pub struct Guard(pub Option<Child>);

impl Guard {
    /// SIGTERM, then asserts a clean exit (0) within 20 s.
    pub fn stop_gracefully(&mut self) {
        let mut child = self.0.take().expect("a running daemon");
        signal(&child, "TERM");
        let status = wait_exit(&mut child, Duration::from_secs(20));
        assert!(
            status.success(),
            "rapport exited with {status} after SIGTERM"
        );
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
