//! The `stowaway` binary: parse arguments, run, map the outcome to an exit code
//! (0 clean, 1 findings, 2 usage or input error).

use std::process::ExitCode;

use clap::Parser;

use stowaway::app;
use stowaway::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // One line, naming the input: anyhow's alternate form joins the context chain.
            let message = format!("{err:#}").replace('\n', " ");
            eprintln!("stowaway: error: {message}");
            ExitCode::from(2)
        }
    }
}
