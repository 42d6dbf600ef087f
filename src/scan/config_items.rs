//! The text of an image's config and history that can hold secrets: `history[].created_by`
//! (with BuildKit's `|N KEY=value` build-arg prefix taken apart), `Env`, `Labels`, `Cmd`,
//! `Entrypoint`, health checks, `OnBuild`, authors and comments, and the same fields of Docker's
//! legacy `container_config`.

use serde_json::Value;

use crate::report::field::{ConfigField, ConfigSection, ContainerField};
use crate::source::ImageConfig;

/// One piece of config text to scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextItem {
    /// `Some(i)` for `history[i]`, `None` for the config proper.
    pub history_index: Option<usize>,
    /// Which field: `created_by`, `build-arg NPM_TOKEN`, `Env DB_PASSWORD`, `Labels x`, `Cmd`…
    pub field: ConfigField,
    pub text: String,
}

/// Every scannable text item of `config`.
pub fn text_items(config: &ImageConfig) -> Vec<TextItem> {
    let mut items = Vec::new();
    for (index, entry) in config.history.iter().enumerate() {
        let history = |field: ConfigField, text: String| TextItem {
            history_index: Some(index),
            field,
            text,
        };
        if let Some(created_by) = &entry.created_by {
            items.push(history(ConfigField::CreatedBy, created_by.clone()));
            for (key, value) in build_args(created_by) {
                let text = format!("{key}={value}");
                items.push(history(ConfigField::BuildArg(key), text));
            }
        }
        if let Some(comment) = &entry.comment {
            items.push(history(ConfigField::Comment, comment.clone()));
        }
        if let Some(author) = &entry.author {
            items.push(history(ConfigField::Author, author.clone()));
        }
    }
    for (name, section) in [
        ("config", ConfigSection::Config),
        ("container_config", ConfigSection::ContainerConfig),
    ] {
        if let Some(body) = config.raw.get(name) {
            collect_container_config(body, section, &mut items);
        }
    }
    for (name, field) in [
        ("author", ConfigField::Author),
        ("comment", ConfigField::Comment),
    ] {
        if let Some(text) = config.raw.get(name).and_then(Value::as_str)
            && !text.is_empty()
        {
            items.push(TextItem {
                history_index: None,
                field,
                text: text.to_string(),
            });
        }
    }
    items
}

fn collect_container_config(body: &Value, section: ConfigSection, items: &mut Vec<TextItem>) {
    let mut push = |field: ContainerField, text: String| {
        if !text.is_empty() {
            items.push(TextItem {
                history_index: None,
                field: ConfigField::Container(section, field),
                text,
            });
        }
    };
    if let Some(Value::Array(env)) = body.get("Env") {
        for entry in env.iter().filter_map(Value::as_str) {
            let name = entry.split_once('=').map_or(entry, |(name, _)| name);
            push(ContainerField::Env(name.to_string()), entry.to_string());
        }
    }
    if let Some(Value::Object(labels)) = body.get("Labels") {
        for (key, value) in labels {
            if let Some(value) = value.as_str() {
                push(ContainerField::Label(key.clone()), format!("{key}={value}"));
            }
        }
    }
    for (name, field) in [
        ("Cmd", ContainerField::Cmd),
        ("Entrypoint", ContainerField::Entrypoint),
        ("OnBuild", ContainerField::OnBuild),
    ] {
        if let Some(text) = joined(body.get(name)) {
            push(field, text);
        }
    }
    if let Some(text) = joined(body.pointer("/Healthcheck/Test")) {
        push(ContainerField::Healthcheck, text);
    }
}

/// A string or a list of strings, joined by spaces.
fn joined(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}

/// The build arguments BuildKit records in front of a RUN step: `|2 A=1 B=two /bin/sh -c …`.
/// Values never contain spaces there (BuildKit does not quote them).
pub fn build_args(created_by: &str) -> Vec<(String, String)> {
    let Some(rest) = created_by.trim_start().strip_prefix('|') else {
        return Vec::new();
    };
    let mut words = rest.split(' ');
    let Some(count) = words.next().and_then(|n| n.parse::<usize>().ok()) else {
        return Vec::new();
    };
    words
        .take(count)
        .filter_map(|word| {
            let (key, value) = word.split_once('=')?;
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildkit_build_args() {
        assert_eq!(
            build_args("|2 NPM_TOKEN=npm_abc HTTP_PROXY= /bin/sh -c npm ci"),
            vec![
                ("NPM_TOKEN".to_string(), "npm_abc".to_string()),
                ("HTTP_PROXY".to_string(), String::new())
            ]
        );
        assert!(build_args("/bin/sh -c #(nop) ENV A=b").is_empty());
        assert!(build_args("|x A=b").is_empty());
    }

    #[test]
    fn collects_config_and_history_text() {
        let d = crate::source::Digest::of(b"x");
        let json = serde_json::json!({
            "rootfs": {"type": "layers", "diff_ids": [d.as_str()]},
            "author": "dev@example.com",
            "config": {
                "Env": ["PATH=/bin", "DB_PASSWORD=s3cr3t"],
                "Labels": {"maintainer": "x"},
                "Cmd": ["run", "--token", "abc"],
                "Healthcheck": {"Test": ["CMD", "curl", "-u", "a:b", "http://localhost"]}
            },
            "container_config": {"Cmd": ["/bin/sh", "-c", "echo hi"]},
            "history": [{"created_by": "|1 TOKEN=zzz /bin/sh -c make"}]
        });
        let config = ImageConfig::parse(json.to_string().as_bytes(), "config").unwrap();
        let fields: Vec<String> = text_items(&config)
            .into_iter()
            .map(|i| i.field.to_string())
            .collect();
        for expected in [
            "created_by",
            "build-arg TOKEN",
            "Env DB_PASSWORD",
            "Labels maintainer",
            "Cmd",
            "Healthcheck",
            "container_config.Cmd",
            "author",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} missing from {fields:?}"
            );
        }
    }
}
