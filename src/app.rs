//! What the binary does, as a library function: `main` only parses arguments and maps the
//! result to an exit code.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};

use crate::cache::Cache;
use crate::cli::{Cli, ColorChoice, Command, Format, ListFormat, RulesCommand, ScanArgs};
use crate::detect::Severity;
use crate::detect::rules::load_user_rules;
use crate::detect::selection::RuleSelection;
use crate::detect::selftest::check_rules;
use crate::progress::TerminalProgress;
use crate::report::baseline::Baseline;
use crate::report::date::Date;
use crate::report::gitlab::ScanTimes;
use crate::report::ignore::IgnoreList;
use crate::report::model::ImageReport;
use crate::report::ruledoc::RuleDoc;
use crate::report::text::{Style, TextOptions};
use crate::report::{Report, gitlab, json, sarif, suppress, text};
use crate::ruleset::scanner_for;
use crate::scan::{LayerCache, ScanOptions, Scanner};
use crate::source::platform::PlatformFilter;
use crate::source::reference::ResolveOptions;
use crate::source::registry::RegistryOptions;
use crate::source::registry::auth::ExplicitCredentials;
use crate::source::resolve;

/// Runs a command; returns the exit code (0 or 1) or an error (exit 2).
pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Scan(args) => scan(args),
        Command::Rules(RulesCommand::List { format, rules }) => list_rules(format, &rules),
        Command::Rules(RulesCommand::Check { files }) => check_rule_files(&files),
        Command::Serve(args) => crate::serve::run(args),
    }
}

fn parse_fail_on(text: &str) -> Result<Option<Severity>> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    text.parse::<Severity>()
        .map(Some)
        .map_err(|err| anyhow!("--fail-on: {err}"))
}

fn scan(args: ScanArgs) -> Result<u8> {
    let started = Instant::now();
    let start_time = SystemTime::now();
    let fail_on = parse_fail_on(&args.fail_on)?;
    let today = Date::today();
    let ignore = IgnoreList::discover(args.ignore_file.as_deref())?;
    let baseline = args.baseline.as_deref().map(Baseline::load).transpose()?;
    let platform = args
        .platform
        .as_deref()
        .map(|p| p.parse::<PlatformFilter>().context("--platform"))
        .transpose()?;
    let (scanner, cache) = cached_scanner(&args)?;
    let rule_docs = RuleDoc::all(scanner.detector().rules());
    if let Some(ignore) = &ignore
        && !args.quiet
    {
        warn_about_ignore_list(ignore, today, &rule_docs);
    }
    let resolve_options = resolve_options(&args, platform)?;
    let mut reports = scan_images(&args, &scanner, &resolve_options, cache.as_deref())?;
    let (by_baseline, by_ignore) = suppress(
        &mut reports,
        ignore.as_ref(),
        baseline.as_ref(),
        today,
        &args,
    )?;
    let mut report = Report::new(reports, started.elapsed().as_millis() as u64);
    report.record_suppressed(by_baseline, by_ignore);
    write_report(&report, &rule_docs, start_time, &args)?;
    if args.output.is_some() && !args.quiet {
        eprintln!("{}", text::summary(&report, Style::new(false)));
    }
    Ok(exit_code(&report, fail_on, &args))
}

/// The gates: findings at or above `--fail-on`, and with `--fail-on-incomplete` anything not
/// scanned (a clean result that did not look everywhere is not a pass).
fn exit_code(report: &Report, fail_on: Option<Severity>, args: &ScanArgs) -> u8 {
    let findings_fail = match fail_on {
        // Writing a baseline accepts the findings it records.
        _ if args.write_baseline.is_some() => false,
        Some(threshold) => report.count_at_or_above(threshold) > 0,
        None => false,
    };
    if findings_fail || (args.fail_on_incomplete && report.is_incomplete()) {
        args.exit_code
    } else {
        0
    }
}

/// The scanner for the selected rules, reading and filling the layer cache unless
/// `--no-cache`; the cache is returned too, for whole-image reports.
fn cached_scanner(args: &ScanArgs) -> Result<(Scanner, Option<Arc<Cache>>)> {
    let selection = RuleSelection {
        user_files: args.rules.clone(),
        disable: args.disable_rule.clone(),
        enable_only: args.enable_only.clone(),
        published_keys: args.published_keys.clone(),
    };
    let scanner = scanner_for(
        &selection,
        ScanOptions {
            show_secrets: args.show_secrets,
            threads: args.threads,
            max_findings_per_file: args.max_findings_per_file,
            archive_limits: args.archive_limits(),
            ..ScanOptions::default()
        },
    )?;
    let cache = crate::cache::open_for_scan(args.cache_dir.as_deref(), args.no_cache, args.quiet);
    let scanner = match &cache {
        Some(cache) => scanner.with_cache(Arc::clone(cache) as Arc<dyn LayerCache>),
        None => scanner,
    };
    Ok((scanner, cache))
}

/// Entries of the ignore list that expired or name no loaded rule.
fn warn_about_ignore_list(ignore: &IgnoreList, today: Date, rule_docs: &[RuleDoc]) {
    let known: Vec<&str> = rule_docs.iter().map(|doc| doc.id.as_str()).collect();
    for warning in ignore.warnings(today, &known) {
        eprintln!("stowaway: warning: {warning}");
    }
}

/// How IMAGE arguments are resolved; reads the password from standard input when `--username`
/// is given.
fn resolve_options(args: &ScanArgs, platform: Option<PlatformFilter>) -> Result<ResolveOptions> {
    Ok(ResolveOptions {
        platform: platform.clone(),
        registry: RegistryOptions {
            credentials: read_credentials(args)?,
            plain_http: args.plain_http,
            ca_certs: args.ca_cert.clone(),
            platform,
            all_platforms: args.all_platforms,
            auth_environment: None,
            // The CLI contacts the registries its user names.
            network: None,
        },
    })
}

/// Scans every image the arguments resolve to, in order, with a progress bar on a terminal;
/// each image's report is cached under the rules digest.
fn scan_images(
    args: &ScanArgs,
    scanner: &Scanner,
    resolve_options: &ResolveOptions,
    cache: Option<&Cache>,
) -> Result<Vec<ImageReport>> {
    let show_progress = !args.quiet && io::stderr().is_terminal();
    let mut reports = Vec::new();
    for argument in &args.images {
        // Errors quote what the image says of itself: they leave redacted.
        let images =
            resolve(argument, resolve_options).map_err(|err| scanner.redacted_error(&err))?;
        for image in images {
            let progress =
                show_progress.then(|| TerminalProgress::new(&image.reference, image.layers.len()));
            let report = match &progress {
                Some(bar) => scanner.scan_image_with_progress(&image, bar),
                None => scanner.scan_image(&image),
            }
            .with_context(|| image.reference.clone())
            .map_err(|err| scanner.redacted_error(&err))?;
            if let Some(bar) = progress {
                bar.finish();
            }
            if let Some(cache) = cache {
                crate::cache::store_image_report(
                    cache,
                    scanner.cache_digest(),
                    &report,
                    args.show_secrets,
                );
            }
            reports.push(report);
        }
    }
    Ok(reports)
}

/// Removes the findings the ignore list and the baseline accept, writing `--write-baseline`
/// in between (it records what the ignore list left). Returns how many each removed:
/// (baseline, ignore list).
fn suppress(
    reports: &mut [ImageReport],
    ignore: Option<&IgnoreList>,
    baseline: Option<&Baseline>,
    today: Date,
    args: &ScanArgs,
) -> Result<(usize, usize)> {
    let by_ignore = ignore.map_or(0, |list| suppress::apply_ignore(reports, list, today));
    if let Some(path) = &args.write_baseline {
        let written = Baseline::from_images(reports, args.show_secrets);
        written.write(path)?;
        if !args.quiet {
            eprintln!(
                "stowaway: wrote baseline {} ({} secrets)",
                path.display(),
                written.entries.len()
            );
        }
    }
    let by_baseline = baseline.map_or(0, |baseline| suppress::apply_baseline(reports, baseline));
    Ok((by_baseline, by_ignore))
}

/// Writes the report in the chosen format to `--output` or standard output, in colour only
/// on a terminal (or when asked).
fn write_report(
    report: &Report,
    rule_docs: &[RuleDoc],
    start_time: SystemTime,
    args: &ScanArgs,
) -> Result<()> {
    let to_terminal = args.output.is_none() && io::stdout().is_terminal();
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    write_output(args.output.as_deref(), |out| match args.format {
        Format::Text => text::write(
            report,
            TextOptions {
                style: Style::new(color),
                verbose: args.verbose,
                show_vendor: args.show_vendor,
            },
            out,
        ),
        Format::Json => json::write(report, out),
        Format::Sarif => sarif::write(report, rule_docs, out),
        Format::Gitlab => gitlab::write(
            report,
            rule_docs,
            ScanTimes {
                start: start_time,
                end: SystemTime::now(),
            },
            out,
        ),
    })
}

fn write_output(
    path: Option<&std::path::Path>,
    render: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    match path {
        Some(path) => {
            let file = File::create(path)
                .with_context(|| format!("{}: cannot create output file", path.display()))?;
            let mut out = BufWriter::new(file);
            render(&mut out)?;
            out.flush()
                .with_context(|| format!("{}: cannot write output file", path.display()))?;
        }
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            render(&mut out)?;
            if let Err(err) = out.flush()
                && err.kind() != io::ErrorKind::BrokenPipe
            {
                return Err(err.into());
            }
        }
    }
    Ok(())
}

fn list_rules(format: ListFormat, user: &[std::path::PathBuf]) -> Result<u8> {
    let selection = RuleSelection {
        user_files: user.to_vec(),
        ..RuleSelection::default()
    };
    let rules = selection.rules()?;
    write_output(None, |out| {
        match format {
            ListFormat::Json => {
                let listed: Vec<serde_json::Value> = rules
                    .iter()
                    .map(|rule| {
                        serde_json::json!({
                            "id": rule.id,
                            "name": rule.name,
                            "description": rule.description,
                            "severity": rule.severity,
                            "keywords": rule.keywords,
                            "validator": rule.validator.map(|v| format!("{v:?}")),
                            "kubernetes_secret_type": rule.kubernetes_secret_type,
                            "references": rule.references,
                            "source": rule.source,
                        })
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut *out, &listed)?;
                writeln!(out)?;
            }
            ListFormat::Text => {
                let width = rules.iter().map(|r| r.id.len()).max().unwrap_or(10);
                writeln!(out, "{:<width$}  {:<8}  NAME", "ID", "SEVERITY")?;
                for rule in &rules {
                    writeln!(
                        out,
                        "{:<width$}  {:<8}  {}",
                        rule.id, rule.severity, rule.name
                    )?;
                }
                writeln!(out, "{} rules", rules.len())?;
            }
        }
        Ok(())
    })?;
    Ok(0)
}

fn check_rule_files(files: &[std::path::PathBuf]) -> Result<u8> {
    let mut total = 0;
    for file in files {
        let rules = load_user_rules(file)?;
        if rules.is_empty() {
            bail!("{}: no rules in this file", file.display());
        }
        let problems = check_rules(&rules);
        if !problems.is_empty() {
            for problem in &problems {
                eprintln!("stowaway: error: {problem}");
            }
            bail!(
                "{}: {} problem{} in {} rule{}",
                file.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                rules.len(),
                if rules.len() == 1 { "" } else { "s" }
            );
        }
        total += rules.len();
        println!("{}: {} rules OK", file.display(), rules.len());
    }
    if files.len() > 1 {
        println!("{total} rules OK");
    }
    Ok(0)
}

/// `--username` with the password from standard input (one line, newline trimmed). The password
/// is never echoed or logged.
fn read_credentials(args: &ScanArgs) -> Result<ExplicitCredentials> {
    let Some(username) = &args.username else {
        return Ok(ExplicitCredentials::default());
    };
    let mut line = String::new();
    io::stdin()
        .read_line(&mut line)
        .context("--password-stdin: cannot read standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("--password-stdin: standard input held no password");
    }
    Ok(ExplicitCredentials {
        username: Some(username.clone()),
        password: Some(password),
    })
}
