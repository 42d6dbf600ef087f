//! Documentation generated from the clap definitions in `cli.rs`, so it cannot drift from the
//! flags: shell completion scripts (`stowaway completion SHELL`) and man pages (`stowaway man
//! [COMMAND]`).
//!
//! The man page is a subcommand rather than a build step: the page always describes the binary
//! that prints it (the environment variables and defaults `cli::command` adds included), a
//! packager needs no build-script output directory, and `cargo install` users get it too
//! (`stowaway man > ~/.local/share/man/man1/stowaway.1`).

use std::io::Write;

use anyhow::{Result, bail};
use clap_complete::Shell;

use crate::cli::command;

/// Writes the completion script for `shell`.
pub fn completion(shell: Shell, out: &mut dyn Write) -> Result<()> {
    let mut command = command();
    // Into memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "stowaway", &mut script);
    out.write_all(&script)?;
    Ok(())
}

/// Writes the man page of the program, or of one subcommand (`stowaway-scan(1)`).
pub fn man_page(subcommand: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let mut command = command();
    command.build();
    let page = match subcommand {
        None => command,
        Some(name) => {
            let Some(sub) = command.find_subcommand(name) else {
                let names: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
                bail!("no subcommand {name:?} (one of: {})", names.join(", "));
            };
            // `stowaway-scan`, as man pages of subcommands are named (git-commit(1)).
            let title = format!("stowaway-{name}");
            sub.clone()
                .name(title.clone())
                .display_name(title)
                .bin_name(format!("stowaway {name}"))
        }
    };
    clap_mangen::Man::new(page).render(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_document_every_scan_flag() {
        let mut out = Vec::new();
        man_page(Some("scan"), &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
        assert!(page.contains("stowaway\\-scan"), "{}", &page[..200]);
        for flag in [
            "fail\\-on",
            "skip\\-dirs",
            "severity",
            "timeout",
            "no\\-progress",
        ] {
            assert!(page.contains(flag), "{flag} missing");
        }
        assert!(man_page(Some("nope"), &mut Vec::new()).is_err());
    }
}
