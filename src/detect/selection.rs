//! Which rules a command runs: the built-in ones, plus the user's rule files, less what
//! `--disable-rule` and `--enable-only` leave out. `stowaway scan`, `stowaway serve` and
//! `stowaway rules list` all choose their rules here.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::published::PublishedKeys;
use super::rules::{Rule, builtin_rules, load_user_rules};

/// The rules the command line asks for.
#[derive(Clone, Debug, Default)]
pub struct RuleSelection {
    /// `--rules`: rule files, or directories of them, added to the built-in rules.
    pub user_files: Vec<PathBuf>,
    /// `--disable-rule`: ids left out.
    pub disable: Vec<String>,
    /// `--enable-only`: when not empty, the only ids kept.
    pub enable_only: Vec<String>,
    /// `--published-keys`: lists of published key material added to the built-in one.
    pub published_keys: Vec<PathBuf>,
}

impl RuleSelection {
    /// The rules in effect: built-in first, then the user files in the order given.
    pub fn rules(&self) -> Result<Vec<Rule>> {
        let mut rules = builtin_rules()?;
        for path in &self.user_files {
            rules.extend(load_user_rules(path)?);
        }
        self.keep_selected(rules)
    }

    /// The published key material in effect: the built-in list, then the user's files.
    pub fn published(&self) -> Result<PublishedKeys> {
        let mut keys = PublishedKeys::builtin();
        for path in &self.published_keys {
            keys.add_file(path)?;
        }
        Ok(keys)
    }

    /// Leaves out what `disable` and `enable_only` say, keeping the order. An id that names no
    /// loaded rule is an error: a typo would otherwise scan with the wrong rules unnoticed.
    fn keep_selected(&self, mut rules: Vec<Rule>) -> Result<Vec<Rule>> {
        for id in self.disable.iter().chain(&self.enable_only) {
            if !rules.iter().any(|rule| &rule.id == id) {
                bail!("unknown rule id {id:?} (see `stowaway rules list`)");
            }
        }
        rules.retain(|rule| !self.disable.contains(&rule.id));
        if !self.enable_only.is_empty() {
            rules.retain(|rule| self.enable_only.contains(&rule.id));
        }
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::parse_rule_file;

    fn three_rules() -> Vec<Rule> {
        let file: String = ["demo-a", "demo-b", "demo-c"]
            .iter()
            .map(|id| {
                format!(
                    "[[rules]]\nid = \"{id}\"\nname = \"{id}\"\nseverity = \"low\"\nkeywords = [\"{id}\"]\nregex = 'x'\n\n"
                )
            })
            .collect();
        parse_rule_file(&file, "demo.toml").unwrap()
    }

    fn ids(rules: &[Rule]) -> Vec<&str> {
        rules.iter().map(|rule| rule.id.as_str()).collect()
    }

    fn select(disable: &[&str], enable_only: &[&str]) -> Result<Vec<Rule>> {
        let selection = RuleSelection {
            user_files: Vec::new(),
            disable: disable.iter().map(|id| id.to_string()).collect(),
            enable_only: enable_only.iter().map(|id| id.to_string()).collect(),
            published_keys: Vec::new(),
        };
        selection.keep_selected(three_rules())
    }

    #[test]
    fn nothing_asked_keeps_every_rule_in_order() {
        assert_eq!(
            ids(&select(&[], &[]).unwrap()),
            ["demo-a", "demo-b", "demo-c"]
        );
    }

    #[test]
    fn disable_rule_leaves_a_rule_out() {
        assert_eq!(
            ids(&select(&["demo-b"], &[]).unwrap()),
            ["demo-a", "demo-c"]
        );
    }

    #[test]
    fn enable_only_keeps_just_those_in_load_order() {
        let kept = select(&[], &["demo-c", "demo-a"]).unwrap();
        assert_eq!(ids(&kept), ["demo-a", "demo-c"]);
        // Disabling wins over enabling the same id.
        let kept = select(&["demo-a"], &["demo-a", "demo-b"]).unwrap();
        assert_eq!(ids(&kept), ["demo-b"]);
    }

    #[test]
    fn unknown_ids_are_an_error() {
        for (disable, enable_only) in [(&["demo-x"][..], &[][..]), (&[][..], &["demo-x"][..])] {
            let err = select(disable, enable_only).unwrap_err().to_string();
            assert_eq!(
                err,
                "unknown rule id \"demo-x\" (see `stowaway rules list`)"
            );
        }
    }

    #[test]
    fn the_built_in_rules_are_selected_by_default() {
        let rules = RuleSelection::default().rules().unwrap();
        assert_eq!(rules.len(), builtin_rules().unwrap().len());
    }
}
