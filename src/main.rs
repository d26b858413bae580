//! Thin: parse the command line, load config, run, map the exit code.

mod commands;

use clap::Parser;
use rapport::cli::Cli;

fn main() {
    let cli = Cli::parse();
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
    let code = runtime.block_on(commands::run(cli));
    std::process::exit(code);
}
