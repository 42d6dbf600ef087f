//! The masked one-line context of a match: the line of the file, history step or config entry
//! that holds the secret, every secret on it masked, cut to a bounded window around it. A
//! context is masked where it is made, before anything stores it (the layer cache included),
//! so no printer ever holds the clear text of a line.

use std::collections::HashMap;

use super::raw::{RawFinding, SecretText};
use crate::layer::FileChunk;
use crate::layer::walk::CHUNK_OVERLAP;
use crate::report::describe::one_line;
use crate::report::field::ConfigField;
use crate::report::model::CONTEXT_CHARS;
use crate::report::redact::{Redactor, redact};

/// Bytes of the line kept before and after the secret.
const AROUND: usize = 64;

/// What a context replaces part of a secret with, where the window cuts through it: the
/// redacted form of a piece would show a piece's "kind marker", which could be the middle of
/// the secret.
const PIECE: &str = "****";

/// Gives each match of one chunk of a file the masked line it is on (see
/// [`attach_contexts_in`]).
pub(super) fn attach_file_contexts(found: &mut [RawFinding], chunk: &FileChunk) {
    attach_contexts_in(
        found,
        &chunk.content,
        chunk.file_offset,
        chunk.report_before,
    );
}

/// Gives each match the masked line it is on. `content` is a chunk of the file, starting
/// `file_offset` bytes into it; matches starting at or past `report_before` belong to the
/// next chunk, so the window never reaches there (a match there would not be masked here). In
/// a chunk after the first, the first `CHUNK_OVERLAP` bytes may end a secret the previous
/// chunk reported, so the window never starts there either.
///
/// A match gets no context when its bytes are not the secret as stored (a decoded value, an
/// archive member, a UTF-16 file) or not text.
fn attach_contexts_in(
    found: &mut [RawFinding],
    content: &[u8],
    file_offset: u64,
    report_before: usize,
) {
    if found.is_empty() {
        return;
    }
    // Every matched range in the chunk, whatever the match: over-masking costs nothing.
    let mut ranges: Vec<(usize, usize)> = found
        .iter()
        .filter_map(|f| {
            let start = usize::try_from(f.offset.checked_sub(file_offset)?).ok()?;
            let end = start.saturating_add(f.length as usize).min(content.len());
            (start < end).then_some((start, end))
        })
        .collect();
    ranges.sort_unstable();
    let ranges = Ranges {
        longest: ranges
            .iter()
            .map(|(start, end)| end - start)
            .max()
            .unwrap_or(0),
        sorted: ranges,
    };
    let floor = if file_offset > 0 { CHUNK_OVERLAP } else { 0 };
    let ceiling = report_before.min(content.len());
    for finding in found.iter_mut() {
        finding.context = file_context(finding, content, file_offset, &ranges, floor, ceiling);
    }
}

/// The matched ranges of a chunk, sorted by start, and the longest one's length: the ranges
/// that reach into a window are found by binary search, so a chunk of 200,000 keys costs its
/// matches times a logarithm, not their square.
struct Ranges {
    sorted: Vec<(usize, usize)>,
    longest: usize,
}

impl Ranges {
    /// The ranges that may share a byte with `from..to` (a superset, in start order).
    fn near(&self, from: usize, to: usize) -> &[(usize, usize)] {
        let first = self
            .sorted
            .partition_point(|(start, _)| *start < from.saturating_sub(self.longest));
        let last = self.sorted.partition_point(|(start, _)| *start < to);
        &self.sorted[first..last.max(first)]
    }
}

fn file_context(
    finding: &RawFinding,
    content: &[u8],
    file_offset: u64,
    ranges: &Ranges,
    floor: usize,
    ceiling: usize,
) -> Option<String> {
    let SecretText::Raw(secret) = &finding.secret else {
        return None;
    };
    if !finding.archive_path.is_empty() {
        return None;
    }
    let start = usize::try_from(finding.offset.checked_sub(file_offset)?).ok()?;
    let end = start.checked_add(finding.length as usize)?;
    if content.get(start..end)? != secret.as_bytes() {
        return None;
    }
    let line_start = memchr::memrchr(b'\n', &content[..start]).map_or(0, |at| at + 1);
    let low = line_start
        .max(start.saturating_sub(AROUND))
        .max(floor.min(start));
    let after = &content[end..];
    let line_end = end + memchr::memchr(b'\n', after).unwrap_or(after.len());
    let high = line_end.min(end + AROUND).min(ceiling.max(end));
    let near = ranges.near(low, high);
    let before = masked_bytes(content, low, start, near);
    let rest = masked_bytes(content, end, high, near);
    if before.trim().is_empty() && rest.trim().is_empty() {
        // The secret alone on its line (a key block): the line says nothing more.
        return None;
    }
    let text = format!(
        "{}{before}{}{rest}{}",
        if low > line_start { "…" } else { "" },
        redact(secret),
        if high < line_end { "…" } else { "" },
    );
    printable(&text)
}

/// `content[from..to]` as text, every byte of a matched range replaced: a range wholly inside
/// by its redacted form, a range cut by the window by [`PIECE`].
fn masked_bytes(content: &[u8], from: usize, to: usize, ranges: &[(usize, usize)]) -> String {
    let mut out = String::new();
    let mut at = from;
    while at < to {
        let hit = ranges
            .iter()
            .filter(|(start, end)| *end > at && *start < to)
            .min_by_key(|(start, _)| *start);
        match hit {
            Some(&(start, end)) if start <= at => {
                // Inside a match that began before `at` (or at it): mask up to its end.
                if start == at && end <= to && start >= from {
                    out.push_str(&redact(&String::from_utf8_lossy(&content[start..end])));
                } else {
                    out.push_str(PIECE);
                }
                at = end.min(to);
            }
            Some(&(start, _)) => {
                out.push_str(&String::from_utf8_lossy(&content[at..start]));
                at = start;
            }
            None => {
                out.push_str(&String::from_utf8_lossy(&content[at..to]));
                at = to;
            }
        }
    }
    out
}

/// The text on one line, control characters made spaces, whitespace collapsed, cut at
/// [`CONTEXT_CHARS`]; `None` for what is not text (mostly replacement characters or empty).
fn printable(text: &str) -> Option<String> {
    let replaced = text.chars().filter(|c| *c == '\u{fffd}').count();
    if replaced * 4 > text.chars().count() {
        return None;
    }
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = one_line(&spaced, CONTEXT_CHARS);
    (!line.is_empty()).then_some(line)
}

/// The contexts of history and config matches: the history step (a build argument's step
/// too) or the config entry, every secret of the image masked (`redactor`), cut around the
/// secret. Masked texts are made once per item, however many matches it holds.
pub(super) fn attach_text_contexts(
    found: &mut [RawFinding],
    items: &[super::config_items::TextItem],
    redactor: &Redactor,
) {
    let by_place: HashMap<(Option<usize>, &ConfigField), &str> = items
        .iter()
        .map(|item| ((item.history_index, &item.field), item.text.as_str()))
        .collect();
    let text_of = |history: Option<usize>, field: &ConfigField| -> Option<&str> {
        // A build argument is shown in its step: the line a user finds in `docker history`.
        let wanted = match (history, field) {
            (Some(_), ConfigField::BuildArg(_)) => &ConfigField::CreatedBy,
            _ => field,
        };
        by_place.get(&(history, wanted)).copied()
    };
    let mut masked: HashMap<(Option<usize>, ConfigField), Option<String>> = HashMap::new();
    for finding in found.iter_mut().filter(|f| f.layer.is_none()) {
        let (Some(field), SecretText::Raw(secret)) = (&finding.field, &finding.secret) else {
            continue;
        };
        let key = (finding.history_index, field.clone());
        let text = masked.entry(key).or_insert_with(|| {
            text_of(finding.history_index, field).map(|t| redactor.redact_in(t))
        });
        finding.context = text
            .as_deref()
            .and_then(|t| window_around(t, &redact(secret)));
    }
}

/// `masked` cut to about [`CONTEXT_CHARS`] characters around the first `mark` (the secret's
/// redacted form), on one line.
fn window_around(masked: &str, mark: &str) -> Option<String> {
    let flat = one_line(masked, usize::MAX);
    let chars: Vec<char> = flat.chars().collect();
    let at = flat
        .find(mark)
        .map_or(0, |byte| flat[..byte].chars().count());
    let budget = CONTEXT_CHARS.saturating_sub(mark.chars().count()) / 2;
    let low = at.saturating_sub(budget);
    let high = (at + mark.chars().count() + budget).min(chars.len());
    let mut text: String = chars[low..high].iter().collect();
    if low > 0 {
        text.insert(0, '…');
    }
    if high < chars.len() {
        text.push('…');
    }
    printable(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::raw::tests::{in_file, in_history};

    fn context_of(content: &str, secrets: &[&str]) -> Vec<Option<String>> {
        let mut found: Vec<RawFinding> = secrets
            .iter()
            .map(|s| in_file(0, "f", content.find(s).unwrap() as u64, s))
            .collect();
        attach_contexts_in(&mut found, content.as_bytes(), 0, content.len());
        found.into_iter().map(|f| f.context).collect()
    }

    #[test]
    fn a_file_line_shows_with_every_secret_on_it_masked() {
        let one = "AKIAQX3ZEXAMPLEKEY12";
        let two = "Zq3LmN8pR2sT4vW6xY8zA1bC3dE5fG7hJ9kLmNoP";
        let text = format!("# creds\nid={one} secret={two} # prod\nnext line\n");
        let contexts = context_of(&text, &[one, two]);
        for context in &contexts {
            let context = context.as_deref().unwrap();
            assert!(!context.contains("QX3ZEXAMPLE") && !context.contains("R2sT4v"));
            assert!(context.contains("id=AKIA****") && context.ends_with("# prod"));
            assert!(!context.contains("next line") && !context.contains("creds"));
        }
    }

    #[test]
    fn a_long_line_is_cut_around_the_secret_and_cut_secrets_are_stars() {
        let secret = "ghp_Zq3LmN8pR2sT4vW6xY8zA1bC3dE5fG123456";
        let neighbour = "AKIAQX3ZEXAMPLEKEY12";
        let text = format!("{neighbour}{}{secret}{}", "x".repeat(55), "y".repeat(500));
        let mut found = vec![in_file(0, "f", 0, neighbour), in_file(0, "f", 75, secret)];
        attach_contexts_in(&mut found, text.as_bytes(), 0, text.len());
        let context = found[1].context.clone().unwrap();
        assert!(context.starts_with("…****x"), "{context}");
        assert!(
            context.contains("ghp_****") && context.ends_with("y…"),
            "{context}"
        );
        assert!(context.chars().count() <= CONTEXT_CHARS + 2, "{context}");
        assert!(!context.contains("EXAMPLE") && !context.contains("Zq3Lm"));
    }

    #[test]
    fn no_context_where_the_bytes_are_not_the_secret_or_past_the_chunk() {
        let secret = "AKIAQX3ZEXAMPLEKEY12";
        let text = format!("k={secret} later=AKIAQX3ZEXAMPLEKEY99");
        // A decoded value: the offset points at other bytes.
        let mut decoded = vec![in_file(0, "f", 0, secret)];
        attach_contexts_in(&mut decoded, text.as_bytes(), 0, text.len());
        assert_eq!(decoded[0].context, None);
        // The next chunk's bytes are left out (a match there is not masked here).
        let mut found = vec![in_file(0, "f", 2, secret)];
        attach_contexts_in(&mut found, text.as_bytes(), 0, 23);
        let context = found[0].context.clone().unwrap();
        assert!(
            !context.contains("later") && !context.contains("KEY99"),
            "{context}"
        );
    }

    #[test]
    fn a_build_arg_shows_its_step_masked() {
        let token = "npm_Zq3LmN8pR2sT4vW6xY8zA1bC3dE5fG7hJ9kL";
        let other = "hunter2hunter2";
        let step = format!("|2 NPM_TOKEN={token} PW={other} /bin/sh -c npm ci");
        let items = vec![
            crate::scan::config_items::TextItem {
                history_index: Some(4),
                field: ConfigField::CreatedBy,
                text: step.clone(),
            },
            crate::scan::config_items::TextItem {
                history_index: Some(4),
                field: ConfigField::BuildArg("NPM_TOKEN".into()),
                text: format!("NPM_TOKEN={token}"),
            },
        ];
        let mut found = vec![in_history(
            4,
            ConfigField::BuildArg("NPM_TOKEN".into()),
            10,
            token,
        )];
        let redactor = Redactor::new(&[token.to_string(), other.to_string()]);
        attach_text_contexts(&mut found, &items, &redactor);
        let context = found[0].context.clone().unwrap();
        assert_eq!(
            context,
            format!(
                "|2 NPM_TOKEN={} PW={} /bin/sh -c npm ci",
                redact(token),
                redact(other)
            )
        );
    }
}
