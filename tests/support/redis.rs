//! Real Redis servers for tests.
//!
//! [`shared_url`]: `RAPPORT_TEST_REDIS_URL` if set, otherwise one `redis-server` per test
//! binary, started on a free port from `redis-server` on PATH. Tests isolate themselves
//! by key prefix. [`RedisServer::start`]: a private server a test may stop, restart or
//! kill (fault tests). No server and no `redis-server`: the test fails and says how to
//! get one.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

const HOW: &str = "the Redis tests need a real Redis: install it (Debian: `apt-get install redis-server`) \
     so `redis-server` is on PATH, or set RAPPORT_TEST_REDIS_URL=redis://HOST:PORT";

/// A prefix no other test (or earlier run) uses.
pub fn unique_prefix(tag: &str) -> String {
    format!("t{tag}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// The Redis every conformance test shares (each under its own prefix).
pub fn shared_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("RAPPORT_TEST_REDIS_URL") {
            return url;
        }
        // Started from a thread that lives as long as the test binary, so the server's
        // parent-death signal fires when the binary exits, not when one test ends.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let server = RedisServer::start(&[]);
            tx.send(server.url()).expect("send url");
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("redis-server started")
    })
    .clone()
}

pub struct RedisServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

fn spawn(dir: &Path, port: u16, args: &[String]) -> Child {
    let mut cmd = Command::new("redis-server");
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--dir")
        .arg(dir)
        .arg("--save")
        .arg("")
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // The server dies with the test binary (kill -9 included), never left behind.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!("cannot start redis-server ({e}): {HOW}"),
    }
}

fn wait_ready(port: u16, child: &mut Child, dir: &Path) {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
            panic!("redis-server exited with {status}: {log}\n{HOW}");
        }
        if ping(port) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "redis-server on port {port} did not answer within 10s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

impl RedisServer {
    /// A private server with extra `redis-server` arguments (e.g. `--appendonly yes`).
    pub fn start(args: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut child = spawn(dir.path(), port, &args);
        wait_ready(port, &mut child, dir.path());
        RedisServer {
            port,
            dir,
            args,
            child: Some(child),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A clean shutdown (SIGTERM: Redis flushes its append-only file), waited for.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let start = Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "redis-server did not stop"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts it again on the same port and folder (same data if it keeps any).
    pub fn restart(&mut self) {
        self.stop();
        let mut child = spawn(self.dir.path(), self.port, &self.args);
        wait_ready(self.port, &mut child, self.dir.path());
        self.child = Some(child);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
