//! Parsing an image's JSON documents with errors that quote nothing of the input.
//!
//! serde's messages quote what they could not take ("invalid type: string \"…\"", "unknown
//! variant `…`"), and those bytes are the input's: a config's environment, a hostile
//! manifest's field. An error may say where and what kind of thing went wrong, never what
//! the document held.

use anyhow::{Result, anyhow};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

/// Parses `bytes` as a `T`; an error reads "`what`: REASON at line L column C", where REASON
/// carries no input bytes.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|err| anyhow!("{what}: {}", describe(&err)))
}

/// Words for a serde_json error that quote nothing of the input.
pub fn describe(err: &serde_json::Error) -> String {
    let place = format!("at line {} column {}", err.line(), err.column());
    match err.classify() {
        Category::Eof => format!("the JSON ends early {place}"),
        Category::Syntax | Category::Io => format!("not valid JSON {place}"),
        Category::Data => {
            let message = err.to_string();
            // Field names come from the schema, not the input: worth keeping.
            match message.strip_prefix("missing field ") {
                Some(rest) => {
                    let field = rest.split(" at line ").next().unwrap_or_default();
                    format!("missing field {field} {place}")
                }
                None => format!("a value of the wrong type or form {place}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        size: u64,
        kind: Kind,
    }

    #[derive(Debug, serde::Deserialize)]
    enum Kind {
        Plain,
    }

    fn error(text: &str) -> String {
        parse::<Doc>(text.as_bytes(), "doc")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_say_where_and_what_kind_never_what() {
        let secret = "AKIAQWERTYUIOPASDFGH";
        let wrong_type = error(&format!(r#"{{"size": "{secret}", "kind": "Plain"}}"#));
        assert_eq!(
            wrong_type,
            "doc: a value of the wrong type or form at line 1 column 31"
        );
        let wrong_variant = error(&format!(r#"{{"size": 1, "kind": "{secret}"}}"#));
        assert!(!wrong_variant.contains(secret), "{wrong_variant}");
        assert_eq!(
            error(r#"{"kind": "Plain"}"#),
            "doc: missing field `size` at line 1 column 17"
        );
        assert_eq!(
            error("{\"size\": 1,"),
            "doc: the JSON ends early at line 1 column 11"
        );
        assert!(error(&format!("{{{secret}")).starts_with("doc: not valid JSON at line 1"));
    }
}
