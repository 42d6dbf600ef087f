//! Where `scan` settings come from, and which wins: a flag on the command line, then a
//! `STOWAWAY_<FLAG>` environment variable, then the config file (`./stowaway.toml` or
//! `--config`), then the default. Clap handles the first two and the default; the config file
//! is read here and its entries become flags for whatever the command line and environment
//! left unset, so a value from the file is parsed and checked exactly as the flag would be.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, FromArgMatches};

use crate::cli::{Cli, command};

/// The config file `scan` reads from the current directory when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "stowaway.toml";

/// Parses the command line (`argv[0]` included), with the config file's settings under the
/// flags and environment variables. `--help`, `--version` and usage errors print and exit as
/// clap does; a config file that cannot be read, or holds an unknown key or a bad value, is an
/// error naming the file.
pub fn parse(argv: Vec<OsString>) -> Result<Cli> {
    let wants_version = argv
        .get(1)
        .is_some_and(|arg| arg == "--version" || arg == "-V");
    let mut command = command();
    if wants_version {
        // Only then: naming the rule set means loading it.
        command = command.version(version_line());
    }
    // The first reading does not require IMAGE: the config file may say `images_from`. The
    // reading that follows the config file (or its absence) requires it as the flags do.
    let matches = without_required_images(command.clone())
        .try_get_matches_from(&argv)
        .unwrap_or_else(|err| err.exit());
    let Some(("scan", scan)) = matches.subcommand() else {
        return Cli::from_arg_matches(&matches).map_err(|err| anyhow!("{err}"));
    };
    let (path, explicit) = config_path(scan);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if !explicit && err.kind() == std::io::ErrorKind::NotFound => {
            let matches = command
                .try_get_matches_from(&argv)
                .unwrap_or_else(|err| err.exit());
            return Cli::from_arg_matches(&matches).map_err(|err| anyhow!("{err}"));
        }
        Err(err) => return Err(err).with_context(|| format!("{}: cannot read", path.display())),
    };
    let scan_command = command.find_subcommand("scan").expect("scan is defined");
    let flags = config_flags(&text, scan_command, scan)
        .with_context(|| format!("{}: config file", path.display()))?;
    let argv = with_flags_after_subcommand(argv, &matches, flags);
    let matches = command.try_get_matches_from(&argv).map_err(|err| {
        anyhow!(
            "{}: config file: {}",
            path.display(),
            first_line_of(&err.render().to_string())
        )
    })?;
    Cli::from_arg_matches(&matches).map_err(|err| anyhow!("{err}"))
}

/// `command` with `scan`'s IMAGE optional whatever else is given.
fn without_required_images(command: clap::Command) -> clap::Command {
    command.mut_subcommand("scan", |scan| {
        scan.mut_arg("images", |images| {
            images
                .required(false)
                .required_unless_present(clap::builder::Resettable::<clap::Id>::Reset)
        })
    })
}

/// `--config` (or `STOWAWAY_CONFIG`), else `./stowaway.toml`; whether it was asked for (then
/// a missing file is an error).
fn config_path(scan: &ArgMatches) -> (PathBuf, bool) {
    match scan.get_one::<PathBuf>("config") {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    }
}

/// The config file's entries as `--flag=value` arguments, for the flags that neither the
/// command line nor the environment set. Keys are flag names (`fail-on`; `fail_on` too);
/// values are strings, integers, booleans (a flag given when true) or arrays of those (the
/// flag repeated).
fn config_flags(text: &str, scan: &clap::Command, given: &ArgMatches) -> Result<Vec<OsString>> {
    let table: toml::Table = toml::from_str(text).map_err(|err| anyhow!("{}", err.message()))?;
    let mut flags = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = scan
            .get_arguments()
            .find(|arg| arg.get_long() == Some(long.as_str()) && !arg.is_positional())
            .filter(|arg| !matches!(arg.get_id().as_str(), "config" | "help"))
            .ok_or_else(|| anyhow!("unknown key {key:?} (keys are scan flags: {})", keys(scan)))?;
        let id = arg.get_id().as_str();
        if matches!(
            given.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        for item in values_of(key, value)? {
            match (takes_value, item) {
                (true, Scalar::Text(text)) => flags.push(format!("--{long}={text}").into()),
                (false, Scalar::Bool(true)) => flags.push(format!("--{long}").into()),
                (false, Scalar::Bool(false)) => {}
                (true, Scalar::Bool(_)) => bail!("{key}: expected a value, not true or false"),
                (false, Scalar::Text(_)) => bail!("{key}: expected true or false"),
            }
        }
    }
    Ok(flags)
}

/// One value of a config entry.
enum Scalar {
    Text(String),
    Bool(bool),
}

/// A config entry's values: one, or each element of an array.
fn values_of(key: &str, value: &toml::Value) -> Result<Vec<Scalar>> {
    let scalar = |value: &toml::Value| match value {
        toml::Value::String(text) => Ok(Scalar::Text(text.clone())),
        toml::Value::Integer(n) => Ok(Scalar::Text(n.to_string())),
        toml::Value::Boolean(b) => Ok(Scalar::Bool(*b)),
        _ => Err(anyhow!(
            "{key}: expected a string, an integer, true or false, or an array of them"
        )),
    };
    match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect(),
        value => Ok(vec![scalar(value)?]),
    }
}

/// The keys a config file may hold, for the error about one it may not.
fn keys(scan: &clap::Command) -> String {
    let names: Vec<&str> = scan
        .get_arguments()
        .filter(|arg| !arg.is_positional())
        .filter_map(|arg| arg.get_long())
        .filter(|long| !matches!(*long, "config" | "help"))
        .collect();
    names.join(", ")
}

/// `argv` with `flags` inserted right after the subcommand's name, so that they come before
/// any `--` and the image arguments.
fn with_flags_after_subcommand(
    argv: Vec<OsString>,
    matches: &ArgMatches,
    flags: Vec<OsString>,
) -> Vec<OsString> {
    let name = matches.subcommand_name().unwrap_or_default();
    // The top-level command takes no options with values: the subcommand is the first
    // argument after the program name that is not an option.
    let at = argv
        .iter()
        .skip(1)
        .position(|arg| arg == name)
        .map_or(argv.len(), |position| position + 2);
    let mut out = argv;
    out.splice(at..at, flags);
    out
}

/// The first line of a clap error, without its `error: ` prefix.
fn first_line_of(text: &str) -> &str {
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line)
}

/// `stowaway 0.1.0 (864 rules, rule set sha256:0123456789ab)`: the version, and the built-in
/// rule set it scans with, as cached results and reports are keyed by it.
fn version_line() -> String {
    let selection = crate::detect::selection::RuleSelection::default();
    let described = selection.rules().and_then(|rules| {
        let digest = crate::detect::ruleset_digest(&rules, &selection.published()?);
        Ok(format!(
            "{} (rules: {} built in, rule set sha256:{})",
            env!("CARGO_PKG_VERSION"),
            rules.len(),
            &digest[..12]
        ))
    });
    described.unwrap_or_else(|err| format!("{} (rules: {err:#})", env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;

    fn scan_with(config: &str, argv: &[&str]) -> Result<crate::cli::ScanArgs> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, config).unwrap();
        let mut full: Vec<OsString> = vec!["stowaway".into(), "scan".into()];
        full.push("--config".into());
        full.push(path.clone().into());
        full.extend(argv.iter().map(OsString::from));
        match parse(full)?.command {
            Command::Scan(args) => Ok(args),
            _ => panic!("scan"),
        }
    }

    #[test]
    fn config_values_fill_in_what_flags_leave_unset() {
        let args = scan_with(
            "fail-on = \"high\"\nskip_dirs = [\"usr/share/doc\", \"opt\"]\nverbose = true\nmax-archive-depth = 5\n",
            &["--fail-on", "critical", "img"],
        )
        .unwrap();
        assert_eq!(args.fail_on, "critical");
        assert_eq!(args.skip_dirs, ["usr/share/doc", "opt"]);
        assert!(args.verbose);
        assert_eq!(args.max_archive_depth, 5);
        assert_eq!(args.images, ["img"]);
    }

    #[test]
    fn config_errors_name_the_key_and_the_value() {
        let err = scan_with("fail_on = \"bogus\"\n", &["img"]).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("s.toml: config file") && text.contains("bogus"),
            "{text}"
        );
        let err = format!(
            "{:#}",
            scan_with("colour = \"never\"\n", &["img"]).unwrap_err()
        );
        assert!(
            err.contains("unknown key \"colour\"") && err.contains("color"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            scan_with("verbose = \"yes\"\n", &["img"]).unwrap_err()
        );
        assert!(err.contains("verbose: expected true or false"), "{err}");
        let err = format!("{:#}", scan_with("[table]\nx = 1\n", &["img"]).unwrap_err());
        assert!(err.contains("unknown key \"table\""), "{err}");
        let err = format!("{:#}", scan_with("verbose = 1.5\n", &["img"]).unwrap_err());
        assert!(err.contains("verbose: expected a string"), "{err}");
    }

    #[test]
    fn the_version_names_the_rule_set_as_detectors_digest_it() {
        let line = version_line();
        let rules = crate::detect::rules::builtin_rules().unwrap();
        assert!(
            line.contains(&format!("rules: {} built in", rules.len())),
            "{line}"
        );
        let detector = crate::detect::Detector::new(rules).unwrap();
        assert!(
            line.contains(&format!("sha256:{}", &detector.rules_digest()[..12])),
            "{line}"
        );
    }
}
