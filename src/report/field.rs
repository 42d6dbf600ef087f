//! Which field of the image config or history a secret was found in. The report names it in
//! words (`created_by`, `build-arg NPM_TOKEN`, `Env DB_PASSWORD`, `container_config.Cmd`); the
//! code works with [`ConfigField`], and only serialization turns one into the other, so the JSON,
//! SARIF and GitLab reports keep the exact strings they always had.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A field of the image config or of one of its history steps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConfigField {
    /// `history[].created_by`: the build step's command line.
    CreatedBy,
    /// A build argument BuildKit recorded in front of a `created_by` line (`|1 KEY=value …`).
    BuildArg(String),
    /// `comment`, of a history step or of the config.
    Comment,
    /// `author`, of a history step or of the config.
    Author,
    /// A field of the container config (`config`, or Docker's legacy `container_config`).
    Container(ConfigSection, ContainerField),
}

/// Which container config a [`ConfigField::Container`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigSection {
    /// `config`: what the container runs with.
    Config,
    /// `container_config`: Docker's legacy record of the container that built the image.
    ContainerConfig,
}

impl ConfigSection {
    /// What the section puts in front of a field's name.
    fn prefix(self) -> &'static str {
        match self {
            ConfigSection::Config => "",
            ConfigSection::ContainerConfig => "container_config.",
        }
    }
}

/// A field of a container config.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ContainerField {
    /// One `Env` entry, by variable name.
    Env(String),
    /// One label, by key.
    Label(String),
    Cmd,
    Entrypoint,
    OnBuild,
    /// `Healthcheck.Test`.
    Healthcheck,
}

impl ContainerField {
    /// The field's word and, for `Env` and `Labels`, the entry's name.
    fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            ContainerField::Env(name) => ("Env", Some(name)),
            ContainerField::Label(key) => ("Labels", Some(key)),
            ContainerField::Cmd => ("Cmd", None),
            ContainerField::Entrypoint => ("Entrypoint", None),
            ContainerField::OnBuild => ("OnBuild", None),
            ContainerField::Healthcheck => ("Healthcheck", None),
        }
    }

    fn parse(text: &str) -> Option<ContainerField> {
        if let Some(name) = text.strip_prefix("Env ") {
            return Some(ContainerField::Env(name.to_string()));
        }
        if let Some(key) = text.strip_prefix("Labels ") {
            return Some(ContainerField::Label(key.to_string()));
        }
        Some(match text {
            "Cmd" => ContainerField::Cmd,
            "Entrypoint" => ContainerField::Entrypoint,
            "OnBuild" => ContainerField::OnBuild,
            "Healthcheck" => ContainerField::Healthcheck,
            _ => return None,
        })
    }
}

impl ConfigField {
    /// `config.Env` entry `name`.
    pub fn env(name: &str) -> ConfigField {
        ConfigField::Container(ConfigSection::Config, ContainerField::Env(name.to_string()))
    }

    /// Reads the field's report wording back (see [`fmt::Display`]).
    pub fn parse(text: &str) -> Option<ConfigField> {
        if let Some(key) = text.strip_prefix("build-arg ") {
            return Some(ConfigField::BuildArg(key.to_string()));
        }
        match text {
            "created_by" => return Some(ConfigField::CreatedBy),
            "comment" => return Some(ConfigField::Comment),
            "author" => return Some(ConfigField::Author),
            _ => {}
        }
        let (section, rest) = match text.strip_prefix(ConfigSection::ContainerConfig.prefix()) {
            Some(rest) => (ConfigSection::ContainerConfig, rest),
            None => (ConfigSection::Config, text),
        };
        ContainerField::parse(rest).map(|field| ConfigField::Container(section, field))
    }

    /// The field as a URI path (`Env/DB_PASSWORD`, `container_config.Cmd`, `author`): the
    /// field's word, then the entry's name, if any. A name's trailing blanks are dropped, and
    /// an empty name leaves the word alone, as URIs were always written.
    pub fn uri_path(&self) -> String {
        let (word, name) = match self {
            ConfigField::CreatedBy => ("created_by".to_string(), None),
            ConfigField::BuildArg(key) => ("build-arg".to_string(), Some(key.as_str())),
            ConfigField::Comment => ("comment".to_string(), None),
            ConfigField::Author => ("author".to_string(), None),
            ConfigField::Container(section, field) => {
                let (word, name) = field.parts();
                (format!("{}{word}", section.prefix()), name)
            }
        };
        match name.map(str::trim_end).filter(|name| !name.is_empty()) {
            Some(name) => format!("{word}/{name}"),
            None => word,
        }
    }
}

/// The report wording: `created_by`, `build-arg KEY`, `comment`, `author`, and for container
/// config fields an optional `container_config.` prefix, then `Env NAME`, `Labels KEY`, `Cmd`,
/// `Entrypoint`, `OnBuild` or `Healthcheck`.
impl fmt::Display for ConfigField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigField::CreatedBy => f.write_str("created_by"),
            ConfigField::BuildArg(key) => write!(f, "build-arg {key}"),
            ConfigField::Comment => f.write_str("comment"),
            ConfigField::Author => f.write_str("author"),
            ConfigField::Container(section, field) => {
                f.write_str(section.prefix())?;
                match field.parts() {
                    (word, Some(name)) => write!(f, "{word} {name}"),
                    (word, None) => f.write_str(word),
                }
            }
        }
    }
}

/// Findings are sorted by location, and a location by its field's wording: ordering by the
/// words keeps reports in the order they always had.
impl Ord for ConfigField {
    fn cmp(&self, other: &Self) -> Ordering {
        if self == other {
            return Ordering::Equal;
        }
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for ConfigField {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for ConfigField {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConfigField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ConfigField::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown config field {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<(ConfigField, &'static str)> {
        use ConfigSection::{Config, ContainerConfig};
        vec![
            (ConfigField::CreatedBy, "created_by"),
            (
                ConfigField::BuildArg("NPM_TOKEN".into()),
                "build-arg NPM_TOKEN",
            ),
            (ConfigField::Comment, "comment"),
            (ConfigField::Author, "author"),
            (ConfigField::env("DB_PASSWORD"), "Env DB_PASSWORD"),
            (
                ConfigField::Container(Config, ContainerField::Label("a b".into())),
                "Labels a b",
            ),
            (ConfigField::Container(Config, ContainerField::Cmd), "Cmd"),
            (
                ConfigField::Container(ContainerConfig, ContainerField::Entrypoint),
                "container_config.Entrypoint",
            ),
            (
                ConfigField::Container(ContainerConfig, ContainerField::Env("X".into())),
                "container_config.Env X",
            ),
            (
                ConfigField::Container(ContainerConfig, ContainerField::OnBuild),
                "container_config.OnBuild",
            ),
            (
                ConfigField::Container(Config, ContainerField::Healthcheck),
                "Healthcheck",
            ),
        ]
    }

    #[test]
    fn serializes_to_the_report_wording_and_back() {
        for (field, text) in every_kind() {
            let json = serde_json::to_string(&field).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<ConfigField>(&json).unwrap(), field);
        }
        assert!(serde_json::from_str::<ConfigField>("\"Volumes\"").is_err());
    }

    #[test]
    fn uri_paths_put_a_slash_between_word_and_name() {
        let paths: Vec<String> = every_kind().iter().map(|(f, _)| f.uri_path()).collect();
        assert_eq!(
            paths,
            [
                "created_by",
                "build-arg/NPM_TOKEN",
                "comment",
                "author",
                "Env/DB_PASSWORD",
                "Labels/a b",
                "Cmd",
                "container_config.Entrypoint",
                "container_config.Env/X",
                "container_config.OnBuild",
                "Healthcheck",
            ]
        );
        assert_eq!(ConfigField::env("PADDED  ").uri_path(), "Env/PADDED");
        assert_eq!(ConfigField::env("").uri_path(), "Env");
    }

    #[test]
    fn orders_by_wording() {
        let mut fields: Vec<ConfigField> = every_kind().into_iter().map(|(f, _)| f).collect();
        fields.sort();
        let words: Vec<String> = fields.iter().map(ToString::to_string).collect();
        let mut sorted = words.clone();
        sorted.sort();
        assert_eq!(words, sorted);
    }
}
