//! Thin: parse the command line, load config, run, map the exit code.

mod commands;

use clap::Parser;
use rapport::cli::Cli;

// The dispatch path allocates per message (render, MIME, SMTP framing); glibc malloc
// showed up as a sixth of the daemon's CPU in the birthday-morning profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    if !matches!(cli.command, rapport::cli::Command::Run { .. }) {
        // Rust ignores SIGPIPE, so `rapport contacts show X | head` would panic on the
        // closed pipe; a one-shot command should just end quietly like other tools. The
        // daemon keeps ignoring it (a peer closing a socket must not kill it).
        // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    rapport::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rapport: cannot start the async runtime: {e}");
            std::process::exit(rapport::exit::SOFTWARE);
        }
    };
    // Spawned, not run on the main thread: `block_on` polls its future on this thread,
    // outside the worker pool.
    let code = runtime.block_on(async {
        tokio::spawn(commands::run(cli))
            .await
            .unwrap_or(rapport::exit::SOFTWARE)
    });
    std::process::exit(code);
}
