//! `stowaway rules list` and `stowaway rules show ID`: the rules in effect, for people and for
//! scripts. The severity shown is the rule's, which is what a scan reports for its matches
//! unless a validator or decoder judges one match otherwise (an encrypted key is lowered, a
//! decoded value keeps the severity of what it replaced); `rules show` says which rules can.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::cli::ListFormat;
use crate::detect::Rule;
use crate::detect::selection::RuleSelection;
use crate::output::write_output;
use crate::report::skips::plural;

/// The rules in effect: built in, plus `user` files.
fn rules_with(user: &[PathBuf]) -> Result<Vec<Rule>> {
    RuleSelection {
        user_files: user.to_vec(),
        ..RuleSelection::default()
    }
    .rules()
}

/// `rules list`.
pub fn list(format: ListFormat, user: &[PathBuf]) -> Result<()> {
    let rules = rules_with(user)?;
    write_output(None, |out| match format {
        ListFormat::Json => {
            let listed: Vec<serde_json::Value> = rules.iter().map(rule_json).collect();
            serde_json::to_writer_pretty(&mut *out, &listed)?;
            writeln!(out)?;
            Ok(())
        }
        ListFormat::Markdown => {
            write!(out, "{}", crate::detect::catalog::markdown(&rules))?;
            Ok(())
        }
        ListFormat::Text => write_table(&rules, out),
    })
}

/// One rule a line, in aligned columns: id, severity, name.
fn write_table(rules: &[Rule], out: &mut dyn Write) -> Result<()> {
    let width = rules
        .iter()
        .map(|rule| rule.id.chars().count())
        .chain(["ID".len()])
        .max()
        .unwrap_or_default();
    // `critical`, the longest severity name.
    let severity_width = "SEVERITY".len();
    writeln!(
        out,
        "{:<width$}  {:<severity_width$}  NAME",
        "ID", "SEVERITY"
    )?;
    for rule in rules {
        writeln!(
            out,
            "{:<width$}  {:<severity_width$}  {}",
            rule.id,
            rule.severity.as_str(),
            rule.name
        )?;
    }
    writeln!(out, "{}", plural(rules.len(), "rule", "rules"))?;
    Ok(())
}

/// A rule as `rules list --format json` gives it.
fn rule_json(rule: &Rule) -> serde_json::Value {
    serde_json::json!({
        "id": rule.id,
        "name": rule.name,
        "description": rule.description,
        "severity": rule.severity,
        "keywords": rule.keywords,
        "validator": rule.validator.map(|v| v.name()),
        "decoder": rule.decoder.map(|d| d.as_str()),
        "kubernetes_secret_type": rule.kubernetes_secret_type,
        "references": rule.references,
        "source": rule.source,
    })
}

/// `rules show ID`: every fact about one rule but its regex and examples (the examples are
/// secret-shaped, and the regex is in its source file, named here).
pub fn show(id: &str, user: &[PathBuf]) -> Result<()> {
    let rules = rules_with(user)?;
    let Some(rule) = rules.iter().find(|rule| rule.id == id) else {
        bail!("no rule {id:?}{}", suggestion(id, &rules));
    };
    write_output(None, |out| write_rule(rule, out))
}

fn write_rule(rule: &Rule, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "{}: {}", rule.id, rule.name)?;
    let adjusted = if rule.validator.is_some() || rule.decoder.is_some() {
        " (its validator or decoder may judge a match otherwise: an encrypted key lower, \
         a decoded value at least as severe as the text it replaces)"
    } else {
        ""
    };
    writeln!(out, "severity:     {}{adjusted}", rule.severity)?;
    let found_by = match (&rule.decoder, &rule.path) {
        (Some(decoder), _) => format!("the {} decoder (by structure)", decoder.as_str()),
        (None, Some(_)) => "its regex, on whole files chosen by their path".to_string(),
        (None, None) => "its regex, near a keyword".to_string(),
    };
    writeln!(out, "found by:     {found_by}")?;
    writeln!(out, "keywords:     {}", rule.keywords.join(", "))?;
    if let Some(validator) = rule.validator {
        writeln!(out, "validator:    {}", validator.name())?;
    }
    if let Some(entropy) = rule.min_entropy {
        writeln!(out, "min entropy:  {entropy} bits per byte")?;
    }
    writeln!(out, "belongs in:   {}", rule.kubernetes_secret_type)?;
    writeln!(out, "source:       {}", rule.source)?;
    for reference in &rule.references {
        writeln!(out, "reference:    {reference}")?;
    }
    if !rule.description.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", rule.description.trim())?;
    }
    Ok(())
}

/// `; did you mean "aws-access-key-id"?` for the ids that contain what was typed, or the
/// other way round.
fn suggestion(id: &str, rules: &[Rule]) -> String {
    let wanted = id.to_ascii_lowercase();
    let close: Vec<&str> = rules
        .iter()
        .map(|rule| rule.id.as_str())
        .filter(|candidate| candidate.contains(&wanted) || wanted.contains(candidate))
        .take(5)
        .collect();
    if close.is_empty() {
        " (see `stowaway rules list`)".to_string()
    } else {
        format!("; did you mean {}?", close.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_whatever_the_severity() {
        let rules = rules_with(&[]).unwrap();
        let mut out = Vec::new();
        write_table(&rules, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let name_column = lines[0].find("NAME").unwrap();
        for (line, rule) in lines[1..].iter().zip(&rules) {
            assert_eq!(&line[name_column..], rule.name, "{line}");
        }
        assert_eq!(
            lines.last(),
            Some(&format!("{} rules", rules.len()).as_str())
        );
    }

    #[test]
    fn unknown_ids_get_suggestions() {
        let rules = rules_with(&[]).unwrap();
        assert!(suggestion("aws", &rules).contains("aws-access-key-id"));
        assert!(suggestion("zzzz-nothing", &rules).contains("rules list"));
    }
}
