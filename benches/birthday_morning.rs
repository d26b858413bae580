//! Birthday morning: N contacts whose birthday is today, all due at once, delivered by
//! `rapport run` over SMTP to postfix's `smtp-sink` on loopback. Prints messages per
//! second and the daemon's peak RSS.
//!
//!     cargo bench --bench birthday_morning                 # N = 100000
//!     BENCH_N=20000 cargo bench --bench birthday_morning
//!     BENCH_TRANSPORT=outbox cargo bench --bench birthday_morning   # no SMTP: the pipeline alone
//!
//! Needs `smtp-sink` (Debian package `postfix`). Not a test: nothing here asserts.

use std::{
    fmt::Write as _,
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use chrono::{Datelike, Utc};
use rapport::{
    domain::TouchStatus,
    store::{SqliteStore, Store},
};

const BIN: &str = env!("CARGO_BIN_EXE_rapport");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument may follow. Ignore both.
    let n: usize = env_or("BENCH_N", "100000").parse().expect("BENCH_N");
    let sink = which("smtp-sink").unwrap_or_else(|| {
        eprintln!(
            "birthday_morning: smtp-sink not found; install it with `apt-get install postfix`"
        );
        std::process::exit(2);
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut sink = Command::new(sink)
        .args(["-u", "nobody", &format!("127.0.0.1:{port}"), "1024"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smtp-sink");
    std::thread::sleep(Duration::from_millis(300));

    let today = Utc::now().date_naive();
    let mut csv = String::from("id,first_name,last_name,email,timezone,birthday,tier\n");
    let tiers = ["family", "friend", "acquaintance"];
    for i in 0..n {
        let _ = writeln!(
            csv,
            "b{i:06},Name{i},Bench,b{i:06}@bench.example,UTC,--{:02}-{:02},{}",
            today.month(),
            today.day(),
            tiers[i % 3]
        );
    }
    let csv_path = dir.path().join("contacts.csv");
    std::fs::write(&csv_path, csv).expect("write csv");
    let db = dir.path().join("bench.db");
    let config = format!(
        r#"
[storage]
url = "sqlite://{db}"
[defaults]
send_window = "00:00-24:00"
[templates]
dir = "{REPO}/templates"
[tiers.acquaintance]
send_window = "00:00-24:00"
[occasions.anniversary]
enabled = false
[channels.email]
transport = "{transport}"
outbox_dir = "{outbox}"
url = "smtp://127.0.0.1:{port}"
tls = "none"
pool_size = {pool}
[dispatch]
workers = {workers}
batch_size = {batch}
concurrency = {concurrency}
poll_interval = "50ms"
"#,
        db = db.display(),
        pool = env_or("BENCH_POOL", "64"),
        transport = env_or("BENCH_TRANSPORT", "smtp"),
        outbox = dir.path().join("outbox").display(),
        workers = env_or("BENCH_WORKERS", "4"),
        batch = env_or("BENCH_BATCH", "500"),
        concurrency = env_or("BENCH_CONCURRENCY", "64"),
    );
    let cfg_path = dir.path().join("bench.toml");
    std::fs::write(&cfg_path, config).expect("write config");
    let rapport = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.current_dir(dir.path())
            .arg("--config")
            .arg(&cfg_path)
            .args(args)
            .env("RAPPORT_LOG", "warn");
        c
    };

    let t = Instant::now();
    let out = rapport(&["import", csv_path.to_str().expect("utf-8 path")])
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("import: {n} contacts in {:.2}s", t.elapsed().as_secs_f64());

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = rt
        .block_on(SqliteStore::open(&format!("sqlite://{}", db.display())))
        .expect("open store");
    let start = Instant::now();
    let mut daemon = rapport(&["run"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start rapport run");
    let pid = daemon.id();
    let mut peak_rss_kb = 0u64;
    let mut first_sent: Option<Duration> = None;
    let sent = loop {
        // Not too often: counting is a scan of the ledger, and it shares the machine.
        std::thread::sleep(Duration::from_millis(250));
        peak_rss_kb = peak_rss_kb.max(vm_hwm(pid));
        // Counting open touches uses the ledger's partial index, so polling stays cheap
        // as the run progresses (a full GROUP BY took a noticeable share of the CPU).
        let (total, open): (i64, i64) = rt
            .block_on(
                sqlx::query_as(
                    "SELECT (SELECT MAX(rowid) FROM touches), \
                     (SELECT COUNT(*) FROM touches WHERE status IN ('planned', 'sending'))",
                )
                .fetch_one(store.pool()),
            )
            .map(|(t, o): (Option<i64>, i64)| (t.unwrap_or(0), o))
            .expect("count touches");
        let sent = (total - open).max(0) as usize;
        if sent > 0 && first_sent.is_none() {
            first_sent = Some(start.elapsed());
        }
        if (total as usize >= n && open == 0) || start.elapsed() > Duration::from_secs(600) {
            let counts = rt.block_on(store.status_counts()).expect("counts");
            break counts.get(&TouchStatus::Sent).copied().unwrap_or(0) as usize;
        }
    };
    let total = start.elapsed();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = daemon.wait();
    let _ = sink.kill();
    let _ = sink.wait();
    let first = first_sent.unwrap_or_default();
    let sending = total.saturating_sub(first);
    println!("sent: {sent}/{n}");
    println!(
        "time from start: {:.2}s (first message after {:.2}s)",
        total.as_secs_f64(),
        first.as_secs_f64()
    );
    println!(
        "throughput, whole run (plan + send): {:.0} msg/s",
        sent as f64 / total.as_secs_f64()
    );
    println!(
        "throughput, sending: {:.0} msg/s",
        sent as f64 / sending.as_secs_f64().max(1e-9)
    );
    println!(
        "peak RSS of rapport run: {:.1} MiB",
        peak_rss_kb as f64 / 1024.0
    );
}

fn vm_hwm(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
