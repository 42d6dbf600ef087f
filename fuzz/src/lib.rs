//! What every fuzz target's `main` does; the targets themselves are in `stowaway::fuzzing`.
//!
//! Under `cargo afl build` (`--cfg fuzzing`) a target runs in AFL++'s persistent mode. Built
//! plainly, it replays files instead: each argument is an input file or a directory of them,
//! every input is run, and the exit status is 1 if any panicked. That is how `run.sh --replay`
//! checks the corpus and the regressions without AFL++.

/// Runs `target` as the fuzzer or the replay asks; `name` is the target's name, for messages.
pub fn main(name: &str, target: fn(&[u8])) {
    // Built before the fuzzer forks, so that each child starts with the detector compiled.
    stowaway::fuzzing::warm_up();
    run(name, target);
}

#[cfg(fuzzing)]
fn run(_name: &str, target: fn(&[u8])) {
    afl::fuzz!(|data: &[u8]| target(data));
}

#[cfg(not(fuzzing))]
fn run(name: &str, target: fn(&[u8])) {
    let paths: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    let replayed = match stowaway::fuzzing::replay(target, &paths) {
        Ok(replayed) => replayed,
        Err(err) => {
            eprintln!("{name}: {err:#}");
            std::process::exit(2);
        }
    };
    for path in &replayed.panicked {
        eprintln!("{name}: PANIC on {}", path.display());
    }
    println!(
        "{name}: {} inputs replayed, {} panicked",
        replayed.inputs,
        replayed.panicked.len()
    );
    if !replayed.panicked.is_empty() {
        std::process::exit(1);
    }
}
