//! The `stowaway` binary: parse arguments, run, map the outcome to an exit code
//! (0 clean, 1 findings, 2 usage or input error).

use std::process::ExitCode;

use stowaway::{app, settings};

fn main() -> ExitCode {
    let result = settings::parse(std::env::args_os().collect()).and_then(app::run);
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // One line, naming the input: anyhow's alternate form joins the context chain.
            let message = format!("{err:#}").replace('\n', " ");
            eprintln!("stowaway: error: {message}");
            ExitCode::from(2)
        }
    }
}
