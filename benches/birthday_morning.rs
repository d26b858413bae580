//! Birthday morning: N contacts whose birthday is today, all due at once, delivered by
//! `rapport run` over SMTP to postfix's `smtp-sink` on loopback. Prints messages per
//! second and the daemon's peak RSS.
//!
//!     cargo bench --bench birthday_morning                 # N = 100000
//!     BENCH_N=20000 cargo bench --bench birthday_morning
//!     BENCH_TRANSPORT=outbox cargo bench --bench birthday_morning   # no SMTP: the pipeline alone
//!     BENCH_BACKEND=redis cargo bench --bench birthday_morning      # on Redis, one replica
//!     BENCH_BACKEND=redis BENCH_REPLICAS=3 cargo bench --bench birthday_morning
//!
//! Needs `smtp-sink` (Debian package `postfix`), and for Redis `redis-server` (started
//! here on a free port with the production settings: AOF, fsync every second;
//! `BENCH_REDIS_AOF=no` turns the AOF off to see its cost). Not a test: nothing here
//! asserts.

use rapport::store::Ledger;
use std::{
    fmt::Write as _,
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use chrono::{Datelike, Utc};
use rapport::{
    config::{StorageBackend, StorageConfig},
    domain::TouchStatus,
    store::{RedisStore, SqliteStore},
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
    let redis_backend = env_or("BENCH_BACKEND", "sqlite") == "redis";
    let replicas: usize = env_or("BENCH_REPLICAS", "1")
        .parse()
        .expect("BENCH_REPLICAS");
    let mut redis_server = None;
    let mut redis_url = String::new();
    let storage = if redis_backend {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args([
                "--appendonly",
                &env_or("BENCH_REDIS_AOF", "yes"),
                "--appendfsync",
                "everysec",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                eprintln!("birthday_morning: cannot start redis-server ({e}); apt-get install redis-server");
                std::process::exit(2);
            });
        redis_server = Some(child);
        std::thread::sleep(Duration::from_millis(300));
        redis_url = format!("redis://127.0.0.1:{port}");
        format!("backend = \"redis\"\nurl = \"{redis_url}\"\nprefix = \"bench\"")
    } else {
        format!("url = \"sqlite://{}\"", db.display())
    };
    let config = format!(
        r#"
[storage]
{storage}
[api]
listen = ""
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
        pool = env_or("BENCH_POOL", "64"),
        transport = env_or("BENCH_TRANSPORT", "smtp"),
        outbox = dir.path().join("outbox").display(),
        workers = env_or("BENCH_WORKERS", "6"),
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
    let progress = if redis_backend {
        let cfg = StorageConfig {
            backend: StorageBackend::Redis,
            url: redis_url.clone(),
            prefix: "bench".into(),
        };
        let store = rt.block_on(RedisStore::open(&cfg)).expect("open redis");
        if std::env::var("BENCH_REDIS_SLOWLOG").is_ok() {
            // Every command's duration, to split the scripts' time by script.
            let mut conn = store.connection();
            for (k, v) in [
                ("slowlog-log-slower-than", "0"),
                ("slowlog-max-len", "2000000"),
            ] {
                rt.block_on(
                    redis::cmd("CONFIG")
                        .arg("SET")
                        .arg(k)
                        .arg(v)
                        .query_async::<()>(&mut conn),
                )
                .expect("CONFIG SET");
            }
        }
        Progress::Redis(store)
    } else {
        Progress::Sqlite(
            rt.block_on(SqliteStore::open(&format!("sqlite://{}", db.display())))
                .expect("open store"),
        )
    };
    let start = Instant::now();
    let mut daemons: Vec<_> = (0..replicas)
        .map(|_| {
            rapport(&["run"])
                .stdout(Stdio::null())
                .spawn()
                .expect("start rapport run")
        })
        .collect();
    let mut peak_rss_kb = 0u64;
    let mut first_sent: Option<Duration> = None;
    let sent = loop {
        // Not too often: counting shares the machine with the daemon.
        std::thread::sleep(Duration::from_millis(250));
        let rss: u64 = daemons.iter().map(|d| vm_hwm(d.id())).sum();
        peak_rss_kb = peak_rss_kb.max(rss);
        let (total, open) = rt.block_on(progress.totals());
        let sent = total.saturating_sub(open);
        if sent > 0 && first_sent.is_none() {
            first_sent = Some(start.elapsed());
        }
        if (total >= n && open == 0) || start.elapsed() > Duration::from_secs(600) {
            break rt.block_on(progress.sent());
        }
    };
    let total = start.elapsed();
    // CPU used per message by each process, from the kernel's accounting (the daemons'
    // figure includes planning; the sink's and Redis' include the import).
    let per_msg = |pids: &[u32]| {
        let secs: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum();
        secs * 1e6 / sent.max(1) as f64
    };
    let daemon_pids: Vec<u32> = daemons.iter().map(|d| d.id()).collect();
    let redis_stats = match &progress {
        Progress::Redis(store) => rt.block_on(command_stats(store, sent)),
        Progress::Sqlite(_) => String::new(),
    };
    let cpu_line = format!(
        "CPU per message: rapport {:.0} us, smtp-sink {:.0} us{}",
        per_msg(&daemon_pids),
        per_msg(&[sink.id()]),
        redis_server
            .as_ref()
            .map(|r| format!(", redis-server {:.0} us", per_msg(&[r.id()])))
            .unwrap_or_default()
    );
    for d in &mut daemons {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(d.id().to_string())
            .status();
    }
    for d in &mut daemons {
        let _ = d.wait();
    }
    let _ = sink.kill();
    let _ = sink.wait();
    if let Some(mut r) = redis_server {
        let _ = r.kill();
        let _ = r.wait();
    }
    let first = first_sent.unwrap_or_default();
    let sending = total.saturating_sub(first);
    println!(
        "backend: {}, replicas: {replicas}",
        if redis_backend { "redis" } else { "sqlite" }
    );
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
        "peak RSS of rapport run (all replicas): {:.1} MiB",
        peak_rss_kb as f64 / 1024.0
    );
    println!("{cpu_line}");
    print!("{redis_stats}");
}

enum Progress {
    Sqlite(SqliteStore),
    Redis(RedisStore),
}

impl Progress {
    /// (touches recorded, touches still open).
    async fn totals(&self) -> (usize, usize) {
        match self {
            // The ledger's partial index keeps this cheap as the run progresses (a full
            // GROUP BY took a noticeable share of the CPU).
            Self::Sqlite(store) => sqlx::query_as(
                "SELECT (SELECT MAX(rowid) FROM touches), \
                 (SELECT COUNT(*) FROM touches WHERE status IN ('planned', 'sending'))",
            )
            .fetch_one(store.pool())
            .await
            .map(|(t, o): (Option<i64>, i64)| (t.unwrap_or(0) as usize, o as usize))
            .expect("count touches"),
            Self::Redis(store) => {
                let counts = store.status_counts().await.expect("counts");
                let open = [TouchStatus::Planned, TouchStatus::Sending]
                    .iter()
                    .map(|s| counts.get(s).copied().unwrap_or(0))
                    .sum::<u64>();
                (counts.values().sum::<u64>() as usize, open as usize)
            }
        }
    }

    async fn sent(&self) -> usize {
        let counts = match self {
            Self::Sqlite(s) => s.status_counts().await,
            Self::Redis(s) => s.status_counts().await,
        };
        counts
            .expect("counts")
            .get(&TouchStatus::Sent)
            .copied()
            .unwrap_or(0) as usize
    }
}

/// Where Redis spent its time (`INFO commandstats`), per message, biggest first. Lua
/// scripts show as `evalsha`; the commands they run show again under their own names.
async fn command_stats(store: &RedisStore, sent: usize) -> String {
    let mut conn = store.connection();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    let mut rows: Vec<(String, u64, f64)> = info
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |k: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            Some((name.to_owned(), field("calls")? as u64, field("usec")?))
        })
        .collect();
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut by_script = String::new();
    if std::env::var("BENCH_REDIS_SLOWLOG").is_ok() {
        let log: Vec<redis::Value> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let names: std::collections::HashMap<String, &str> =
            rapport::store::redis::script_names().into_iter().collect();
        let mut per: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for entry in log {
            let redis::Value::Array(fields) = entry else {
                continue;
            };
            let (Some(redis::Value::Int(us)), Some(redis::Value::Array(args))) =
                (fields.get(2), fields.get(3))
            else {
                continue;
            };
            let arg = |i: usize| match args.get(i) {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).to_lowercase(),
                _ => String::new(),
            };
            let name = match arg(0).as_str() {
                "evalsha" => format!("script {}", names.get(&arg(1)).copied().unwrap_or("?")),
                other => other.to_owned(),
            };
            let e = per.entry(name).or_default();
            e.0 += 1;
            e.1 += *us as u64;
        }
        let mut per: Vec<_> = per.into_iter().collect();
        per.sort_by_key(|e| std::cmp::Reverse((e.1).1));
        by_script.push_str("redis time per message by call (SLOWLOG):\n");
        for (name, (calls, us)) in per.iter().take(12) {
            let _ = writeln!(
                by_script,
                "  {name:<24} {:>7.2} us  ({:.3} calls/msg)",
                *us as f64 / sent.max(1) as f64,
                *calls as f64 / sent.max(1) as f64
            );
        }
    }
    let mut out =
        String::from("redis time per message by command (us; scripts include their commands):\n");
    for (name, calls, usec) in rows.iter().take(12) {
        let _ = writeln!(
            out,
            "  {name:<16} {:>7.2} us  ({:.2} calls/msg)",
            usec / sent.max(1) as f64,
            *calls as f64 / sent.max(1) as f64
        );
    }
    out + &by_script
}

/// User + system CPU seconds a live process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
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
