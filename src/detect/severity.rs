//! How bad a finding is: a rule's severity, which validators and decoders may lower or raise.
//! Its own module because rules, validators, the engine and the decoders all speak it.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Not a secret on its own but worth knowing (a certificate, an AWS IAM unique id).
    Info,
    /// A credential with little reach: test-mode and sandbox keys, client-side tokens.
    Low,
    /// A credential of limited or uncertain reach: short-lived tokens, encrypted private
    /// keys, values under credential-like names (the generic rules).
    Medium,
    /// A working credential to a service.
    High,
    /// A credential with broad reach: cloud account and admin keys, unencrypted private
    /// keys.
    Critical,
}

impl Severity {
    /// Every severity, most severe first: the order reports list counts in.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    /// The lowercase name used in rule files, flags (`--fail-on`) and every report format.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: `{:<8}` must line columns up.
        f.pad(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => bail!("unknown severity {text:?} (expected critical, high, medium, low or info)"),
        })
    }
}

/// `--fail-on`: a severity, the lowest that fails the run, or `none` (never fails).
pub fn parse_fail_on(text: &str) -> Result<Option<Severity>> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    text.parse::<Severity>()
        .map(Some)
        .map_err(|err| anyhow!("--fail-on: {err:#}; or none, to never fail"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Info < Severity::Low);
        assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
    }
}
