//! What the binary does, as a library function: `main` only parses arguments and maps the
//! result to an exit code.

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

use crate::cli::{Cli, ColorChoice, Command, Format, RulesCommand, ScanArgs};
use crate::detect::Severity;
use crate::detect::rules::load_user_rules;
use crate::detect::selection::RuleSelection;
use crate::detect::selftest::check_rules;
use crate::output::write_output;
use crate::progress::TerminalProgress;
use crate::report::baseline::Baseline;
use crate::report::date::Date;
use crate::report::gitlab::ScanTimes;
use crate::report::ignore::IgnoreList;
use crate::report::junit::Gates;
use crate::report::model::{ImageError, ImageReport, Workload};
use crate::report::ruledoc::RuleDoc;
use crate::report::skips::plural;
use crate::report::text::{Style, TextOptions};
use crate::report::{Report, gitlab, json, junit, markdown, redact, sarif, suppress, text};
use crate::ruleset::scanner_for;
use crate::scan::{LayerCache, ScanOptions, Scanner, SkipPaths};
use crate::source::containerd::ContainerdOptions;
use crate::source::docker_daemon::DaemonOptions;
use crate::source::local_order;
use crate::source::platform::PlatformFilter;
use crate::source::reference::ResolveOptions;
use crate::source::registry::RegistryOptions;
use crate::source::registry::auth::ExplicitCredentials;
use crate::source::resolve;
use crate::store::{ResultStore, StoreArgs};

/// Runs a command; returns the exit code (0 or 1) or an error (exit 2).
pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Scan(args) => scan(args),
        Command::Rules(RulesCommand::List { format, rules }) => {
            crate::rule_info::list(format, &rules).map(|()| 0)
        }
        Command::Rules(RulesCommand::Show { id, rules }) => {
            crate::rule_info::show(&id, &rules).map(|()| 0)
        }
        Command::Rules(RulesCommand::Check { files }) => check_rule_files(&files),
        Command::Serve(args) => crate::serve::run(args, crate::serve::Role::Server),
        Command::Worker(args) => crate::serve::run(args, crate::serve::Role::Worker),
        Command::Sweep(args) => crate::sweep::run(args),
        Command::Completion { shell } => {
            write_output(None, |out| crate::docs::completion(shell, out)).map(|()| 0)
        }
        Command::Man { command } => {
            write_output(None, |out| crate::docs::man_page(command.as_deref(), out)).map(|()| 0)
        }
    }
}

fn scan(args: ScanArgs) -> Result<u8> {
    let started = Instant::now();
    let start_time = SystemTime::now();
    stop_after(args.timeout);
    let fail_on = crate::detect::severity::parse_fail_on(&args.fail_on)?;
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
    let targets = targets(&args)?;
    let (mut reports, errors) = scan_images(
        &args,
        &targets,
        &scanner,
        &resolve_options,
        cache.as_deref(),
    )?;
    let (by_baseline, by_ignore) = suppress(
        &mut reports,
        ignore.as_ref(),
        baseline.as_ref(),
        today,
        &args,
    )?;
    let elapsed = started.elapsed().as_millis() as u64;
    let mut report = Report::new(reports, elapsed);
    report.errors = errors;
    // The gate counts every finding; --severity only chooses what the report shows.
    let code = exit_code(&report, fail_on, &args);
    if let Some(shown) = args.shown_severities() {
        let mut images = report.images;
        let hidden = suppress::apply_severity_filter(&mut images, &shown);
        report = Report::new(images, elapsed);
        report.stats.hidden_by_severity = hidden;
    }
    report.record_suppressed(by_baseline, by_ignore);
    let gates = Gates {
        fail_on,
        fail_on_incomplete: args.fail_on_incomplete,
    };
    write_report(&report, &rule_docs, start_time, gates, &args)?;
    if args.output.is_some() && !args.quiet {
        eprintln!("{}", text::summary(&report, Style::new(false)));
    }
    for failed in &report.errors {
        eprintln!("stowaway: error: {}: {}", failed.image, failed.error);
    }
    Ok(code)
}

/// One image to scan: an IMAGE argument or an `--images-from` entry, with the workloads that
/// run it.
struct Target {
    argument: String,
    used_by: Vec<Workload>,
}

/// The IMAGE arguments, then the images `--images-from` lists, each distinct reference once.
fn targets(args: &ScanArgs) -> Result<Vec<Target>> {
    let mut targets: Vec<Target> = Vec::new();
    let listed = match &args.images_from {
        Some(path) => crate::images_from::read(path)?,
        None => Vec::new(),
    };
    let arguments = args.images.iter().map(|image| (image.clone(), Vec::new()));
    let listed = listed.into_iter().map(|l| (l.reference, l.used_by));
    for (argument, used_by) in arguments.chain(listed) {
        match targets
            .iter_mut()
            .find(|target| target.argument == argument)
        {
            Some(target) => target.used_by.extend(used_by),
            None => targets.push(Target { argument, used_by }),
        }
    }
    Ok(targets)
}

/// `--timeout`: a watchdog that ends the process with exit code 2 (an error, no report) when
/// the scan runs past the limit, wherever it is: a registry that stops answering, a huge
/// layer. Zero sets no limit.
fn stop_after(timeout: Duration) {
    if timeout.is_zero() {
        return;
    }
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        eprintln!(
            "stowaway: error: the scan did not finish within --timeout {}s; stopped without a report",
            timeout.as_secs()
        );
        std::process::exit(2);
    });
}

/// The gates: findings at or above `--fail-on`, and with `--fail-on-incomplete` anything not
/// scanned (a clean result that did not look everywhere is not a pass). Images of
/// `--images-from` that could not be scanned make it 2 when no gate fails: a failing gate
/// (1, or `--exit-code`) wins, errors or not, since the report has what must be fixed.
fn exit_code(report: &Report, fail_on: Option<Severity>, args: &ScanArgs) -> u8 {
    let findings_fail = match fail_on {
        // Writing a baseline accepts the findings it records.
        _ if args.write_baseline.is_some() => false,
        Some(threshold) => report.count_at_or_above(threshold) > 0,
        None => false,
    };
    if findings_fail || (args.fail_on_incomplete && report.is_incomplete()) {
        args.exit_code
    } else if !report.errors.is_empty() {
        2
    } else {
        0
    }
}

/// The scanner for the selected rules, reading and filling the layer cache (`--store`, else
/// the embedded one) unless `--no-cache`; the store is returned too, for whole-image reports.
fn cached_scanner(args: &ScanArgs) -> Result<(Scanner, Option<Arc<dyn ResultStore>>)> {
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
            skip: SkipPaths::new(&args.skip_dirs, &args.skip_files)?,
            ..ScanOptions::default()
        },
    )?;
    let store = StoreArgs {
        url: args.store.as_deref(),
        cache_dir: args.cache_dir.as_deref(),
        ttl: args.store_ttl,
    };
    let cache = crate::store::open_for_scan(&store, args.no_cache, args.quiet)?;
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
        image_sources: local_order::parse_list(&args.image_src).context("--image-src")?,
        docker: DaemonOptions::default(),
        quiet: args.quiet,
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
        containerd: ContainerdOptions {
            address: args.containerd_address.clone(),
            namespace: args.containerd_namespace.clone(),
        },
    })
}

/// Scans every image the targets resolve to, in order, with a progress bar on a terminal;
/// each image's report is cached under the rules digest. With `--images-from`, an image that
/// fails is recorded and the others are scanned; otherwise the first failure is the error.
fn scan_images(
    args: &ScanArgs,
    targets: &[Target],
    scanner: &Scanner,
    resolve_options: &ResolveOptions,
    cache: Option<&dyn ResultStore>,
) -> Result<(Vec<ImageReport>, Vec<ImageError>)> {
    let keep_going = args.images_from.is_some();
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for target in targets {
        match scan_target(args, &target.argument, scanner, resolve_options, cache) {
            Ok(scanned) => reports.extend(scanned.into_iter().map(|mut report| {
                report.used_by = target.used_by.clone();
                report
            })),
            Err(err) if keep_going => errors.push(ImageError {
                image: target.argument.clone(),
                error: format!("{err:#}").replace('\n', " "),
                used_by: target.used_by.clone(),
            }),
            Err(err) => return Err(err),
        }
    }
    Ok((reports, errors))
}

/// The reports of the images one argument resolves to.
fn scan_target(
    args: &ScanArgs,
    argument: &str,
    scanner: &Scanner,
    resolve_options: &ResolveOptions,
    cache: Option<&dyn ResultStore>,
) -> Result<Vec<ImageReport>> {
    let show_progress = !args.quiet && !args.no_progress && io::stderr().is_terminal();
    let mut reports = Vec::new();
    // Errors quote what the image says of itself: they leave redacted.
    let images = resolve(argument, resolve_options).map_err(|err| scanner.redacted_error(&err))?;
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
            crate::store::store_image_report(
                cache,
                scanner.cache_digest(),
                &report,
                args.show_secrets,
            );
        }
        reports.push(report);
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
                "stowaway: wrote baseline {} ({})",
                path.display(),
                plural(written.entries.len(), "secret", "secrets")
            );
        }
    }
    let by_baseline = baseline.map_or(0, |baseline| suppress::apply_baseline(reports, baseline));
    Ok((by_baseline, by_ignore))
}

/// Writes the report in the chosen format to `--output` or standard output, in colour only
/// on a terminal (or when asked). Markdown and JUnit go where others read them (comments, CI
/// panes): they show secrets redacted even with `--show-secrets`.
fn write_report(
    report: &Report,
    rule_docs: &[RuleDoc],
    start_time: SystemTime,
    gates: Gates,
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
        Format::Markdown if args.show_secrets => markdown::write(&redact::masked(report), out),
        Format::Markdown => markdown::write(report, out),
        Format::Junit if args.show_secrets => junit::write(&redact::masked(report), gates, out),
        Format::Junit => junit::write(report, gates, out),
    })
}

fn check_rule_files(files: &[std::path::PathBuf]) -> Result<u8> {
    let mut total = 0;
    let mut lines = Vec::new();
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
        lines.push(format!(
            "{}: {} OK",
            file.display(),
            plural(rules.len(), "rule", "rules")
        ));
    }
    if files.len() > 1 {
        lines.push(format!("{} OK", plural(total, "rule", "rules")));
    }
    write_output(None, |out| {
        for line in &lines {
            writeln!(out, "{line}")?;
        }
        Ok(())
    })?;
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
