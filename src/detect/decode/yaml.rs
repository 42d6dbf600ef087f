//! A small YAML (and so JSON) document tree with the byte range of every scalar, built from
//! `saphyr-parser`'s events.
//!
//! The tree is built here, without recursion, rather than by a YAML loader: loaders recurse once
//! per nesting level and overflow a worker thread's stack on input such as `- - - - …`, and a
//! scanner reads whatever an image holds. Nesting deeper than [`MAX_DEPTH`] is dropped, aliases
//! are not expanded (no "billion laughs"), duplicate keys are kept in order, and a document that
//! fails to parse costs only itself: parsing resumes at the next `---` line.

use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Collections nested deeper than this become [`Node::Other`].
pub const MAX_DEPTH: usize = 64;
/// Nodes kept per file; parsing stops past this many (Secrets and configs are small).
pub const MAX_NODES: usize = 500_000;
/// Text longer than this is not parsed. A `kubectl get secrets -o yaml` of a thousand Secrets
/// is about 4 MiB.
pub const MAX_TEXT_BYTES: usize = 16 << 20;
/// Text with a line longer than this is not parsed: on one line of flow style (minified JSON)
/// the parser queues the tokens of the whole line before it yields a node, about 28 bytes a
/// byte of text (a 1.9 MB line held 54 MB). Pretty-printed JSON and YAML have short lines.
pub const MAX_LINE_BYTES: usize = 256 << 10;

/// Why `text` is not parsed, if it is too large for the parser's memory.
pub fn too_large(text: &str) -> Option<String> {
    if text.len() > MAX_TEXT_BYTES {
        return Some(format!(
            "over {} MiB: scanned as text, not decoded as YAML or JSON",
            MAX_TEXT_BYTES >> 20
        ));
    }
    if text.len() > MAX_LINE_BYTES {
        let mut line_start = 0;
        for newline in memchr::memchr_iter(b'\n', text.as_bytes()).chain([text.len()]) {
            if newline - line_start > MAX_LINE_BYTES {
                return Some(format!(
                    "a line over {} KiB: scanned as text, not decoded as YAML or JSON",
                    MAX_LINE_BYTES >> 10
                ));
            }
            line_start = newline + 1;
        }
    }
    None
}

/// A parsed YAML node.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Key/value pairs in document order; keys that are not scalars are kept as `""`.
    Map(Vec<(String, Node)>),
    /// An alias, or a collection past [`MAX_DEPTH`].
    Other,
}

/// A scalar and where its text is in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The value after YAML's unquoting and folding.
    pub value: String,
    /// Byte range of the scalar's text in the parsed input, quotes excluded.
    pub span: Range<usize>,
}

impl Node {
    /// The value of `key` in a mapping (the first one, if the key is repeated).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a path of mapping keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match self {
            Node::Scalar(scalar) => Some(scalar),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.value.as_str())
    }

    /// The pairs of a mapping; empty for anything else.
    pub fn entries(&self) -> &[(String, Node)] {
        match self {
            Node::Map(pairs) => pairs,
            _ => &[],
        }
    }

    /// The items of a sequence; empty for anything else.
    pub fn items(&self) -> &[Node] {
        match self {
            Node::Seq(items) => items,
            _ => &[],
        }
    }
}

/// Every document of `text` that parses; byte offsets are relative to `text`.
pub fn parse_documents(text: &str) -> Vec<Node> {
    parse_documents_bounded(text).0
}

/// [`parse_documents`], and whether parsing stopped at [`MAX_NODES`] with text left unread.
pub fn parse_documents_bounded(text: &str) -> (Vec<Node>, bool) {
    let mut documents = Vec::new();
    let mut budget = Budget {
        left: MAX_NODES,
        cut: false,
    };
    let mut start = 0;
    while start < text.len() && !budget.cut {
        match parse_from(text, start, &mut documents, &mut budget) {
            Ok(()) => break,
            Err(failed_at) => match next_document_marker(text, failed_at.max(start)) {
                Some(next) if next > start => start = next,
                _ => break,
            },
        }
    }
    (documents, budget.cut)
}

/// The nodes a file may still add, and whether an event came after they ran out.
struct Budget {
    left: usize,
    cut: bool,
}

/// The byte offset of the first `---` line that starts after `from`.
fn next_document_marker(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = from;
    while let Some(found) = memchr::memmem::find(&bytes[at..], b"\n---") {
        let marker = at + found + 1;
        match bytes.get(marker + 3) {
            None | Some(b' ' | b'\t' | b'\r' | b'\n') => return Some(marker),
            _ => at = marker,
        }
    }
    None
}

enum Frame {
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>, Option<String>),
}

/// Parses `text[start..]`, pushing completed documents; on a parse error returns the byte
/// offset (in `text`) where the failing document starts.
fn parse_from(
    text: &str,
    start: usize,
    documents: &mut Vec<Node>,
    budget: &mut Budget,
) -> Result<(), usize> {
    let input = &text[start..];
    let mut offsets = CharOffsets::new(input);
    let mut tree = TreeBuilder::default();
    let mut document_start = start;
    for event in Parser::new_from_str(input) {
        let Ok((event, span)) = event else {
            return Err(document_start);
        };
        if budget.left == 0 {
            budget.cut = true;
            return Ok(());
        }
        let node = match event {
            Event::SequenceStart(..) => {
                tree.open(Frame::Seq(Vec::new()));
                continue;
            }
            Event::MappingStart(..) => {
                tree.open(Frame::Map(Vec::new(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match tree.close() {
                Some(node) => node,
                None => continue,
            },
            Event::Scalar(value, style, _, _) => {
                if tree.skipping() {
                    continue;
                }
                let quoted = matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted);
                let begin = start + offsets.byte(span.start.index());
                let end = start + offsets.byte(span.end.index());
                Node::Scalar(scalar(value.into_owned(), quoted, begin..end))
            }
            Event::Alias(_) => {
                if tree.skipping() {
                    continue;
                }
                Node::Other
            }
            Event::DocumentStart(_) => {
                document_start = start + offsets.byte(span.start.index());
                continue;
            }
            Event::DocumentEnd => {
                if let Some(done) = tree.finish_document() {
                    documents.push(done);
                }
                continue;
            }
            _ => continue,
        };
        budget.left = budget.left.saturating_sub(1);
        tree.add(node);
    }
    if let Some(done) = tree.finish_document() {
        documents.push(done);
    }
    Ok(())
}

/// A scalar whose text spans `text` in the input; the span of a quoted scalar leaves its
/// quotes out.
fn scalar(value: String, quoted: bool, text: Range<usize>) -> Scalar {
    let (mut begin, mut end) = (text.start, text.end);
    if quoted && end >= begin + 2 {
        begin += 1;
        end -= 1;
    }
    Scalar {
        value,
        span: begin..end.max(begin),
    }
}

/// The document tree being built from parser events, with an explicit stack instead of
/// recursion.
#[derive(Default)]
struct TreeBuilder {
    /// The collections open around the current event, innermost last.
    stack: Vec<Frame>,
    /// Collections opened past MAX_DEPTH whose events are being skipped.
    skipping: usize,
    /// The document's top node, once complete.
    root: Option<Node>,
}

impl TreeBuilder {
    /// Whether events are inside a collection past [`MAX_DEPTH`], and so dropped.
    fn skipping(&self) -> bool {
        self.skipping > 0
    }

    /// A collection starts; past [`MAX_DEPTH`] its events are skipped.
    fn open(&mut self, frame: Frame) {
        if self.skipping > 0 || self.stack.len() >= MAX_DEPTH {
            self.skipping += 1;
        } else {
            self.stack.push(frame);
        }
    }

    /// A collection ends: the node it makes, [`Node::Other`] for the outermost skipped one,
    /// nothing inside a skipped one.
    fn close(&mut self) -> Option<Node> {
        if self.skipping > 0 {
            self.skipping -= 1;
            return (self.skipping == 0).then_some(Node::Other);
        }
        match self.stack.pop()? {
            Frame::Seq(items) => Some(Node::Seq(items)),
            Frame::Map(pairs, _) => Some(Node::Map(pairs)),
        }
    }

    /// Puts a complete node where it belongs: in the innermost collection (as a mapping's key
    /// or value), or as the document's root.
    fn add(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(Frame::Seq(items)) => items.push(node),
            Some(Frame::Map(pairs, key)) => match key.take() {
                Some(key) => pairs.push((key, node)),
                None => {
                    *key = Some(match node {
                        Node::Scalar(scalar) => scalar.value,
                        _ => String::new(),
                    })
                }
            },
            None => self.root = Some(node),
        }
    }

    /// The document's root, if complete; the builder is then ready for the next document.
    fn finish_document(&mut self) -> Option<Node> {
        self.stack.clear();
        self.root.take()
    }
}

/// Converts the parser's character indices into byte offsets.
struct CharOffsets<'a> {
    text: &'a str,
    ascii: bool,
    /// The last conversion, as (character index, byte offset): lookups mostly move forward.
    last: (usize, usize),
}

impl<'a> CharOffsets<'a> {
    fn new(text: &'a str) -> Self {
        CharOffsets {
            text,
            ascii: text.is_ascii(),
            last: (0, 0),
        }
    }

    fn byte(&mut self, char_index: usize) -> usize {
        if self.ascii {
            return char_index.min(self.text.len());
        }
        let (mut chars, mut bytes) = if char_index >= self.last.0 {
            self.last
        } else {
            (0, 0)
        };
        for c in self.text[bytes..].chars() {
            if chars == char_index {
                break;
            }
            chars += 1;
            bytes += c.len_utf8();
        }
        self.last = (chars, bytes);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of<'a>(text: &'a str, node: &Node) -> &'a str {
        &text[node.as_scalar().unwrap().span.clone()]
    }

    #[test]
    fn spans_point_at_the_value_text() {
        let text = "kind: Secret\ndata:\n  a: 'cXVvdGVk'\n  b: \"ZG91Ymxl\"\n  c: cGxhaW4=\n";
        let docs = parse_documents(text);
        assert_eq!(docs.len(), 1);
        let data = docs[0].get("data").unwrap();
        assert_eq!(text_of(text, data.get("a").unwrap()), "cXVvdGVk");
        assert_eq!(text_of(text, data.get("b").unwrap()), "ZG91Ymxl");
        assert_eq!(text_of(text, data.get("c").unwrap()), "cGxhaW4=");
        assert_eq!(
            docs[0].path(&["data", "c"]).unwrap().as_str(),
            Some("cGxhaW4=")
        );
    }

    #[test]
    fn non_ascii_text_keeps_byte_offsets() {
        let text = "note: \"héllo wörld\"\nkey: välue\n";
        let docs = parse_documents(text);
        assert_eq!(text_of(text, docs[0].get("key").unwrap()), "välue");
        assert_eq!(text_of(text, docs[0].get("note").unwrap()), "héllo wörld");
    }

    #[test]
    fn json_and_multiple_documents() {
        let text = "{\"a\":{\"b\":\"c\"}}\n---\nx: 1\n---\n- y\n";
        let docs = parse_documents(text);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].path(&["a", "b"]).unwrap().as_str(), Some("c"));
        assert_eq!(docs[2].items()[0].as_str(), Some("y"));
    }

    #[test]
    fn a_broken_document_costs_only_itself() {
        let text = "a: 1\n---\nb: [unclosed\n---\nc: 3\n";
        let docs = parse_documents(text);
        assert!(docs.iter().any(|d| d.get("a").is_some()));
        assert!(docs.iter().any(|d| d.get("c").is_some()));
    }

    #[test]
    fn deep_nesting_and_aliases_are_bounded() {
        let deep = "- ".repeat(100_000) + "x";
        let docs = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || parse_documents(&deep).len())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(docs, 1);
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, prev) in ('b'..='z').zip('a'..) {
            bomb.push_str(&format!(
                "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let docs = parse_documents(&bomb);
        assert_eq!(docs[0].get("z"), Some(&Node::Seq(vec![Node::Other; 4])));
        assert!(parse_documents(&"[".repeat(100_000)).is_empty());
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let docs = parse_documents("a: 1\na: 2\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].entries().len(), 2);
    }

    #[test]
    fn text_too_large_for_the_parser_is_named() {
        let pretty = "a: 1\n".repeat(MAX_LINE_BYTES);
        assert_eq!(too_large(&pretty), None);
        let minified = format!(
            "{{\"kind\":\"Secret\",\"x\":[{}1]}}",
            "1,".repeat(MAX_LINE_BYTES)
        );
        assert!(
            too_large(&minified)
                .unwrap()
                .contains("a line over 256 KiB")
        );
        let long_last_line = format!("a: 1\n{}", "b".repeat(MAX_LINE_BYTES + 1));
        assert!(too_large(&long_last_line).is_some());
        let huge = "a: 1\n".repeat(MAX_TEXT_BYTES / 5 + 1);
        assert!(too_large(&huge).unwrap().contains("over 16 MiB"));
    }

    #[test]
    fn a_file_past_the_node_limit_says_it_was_cut() {
        let (docs, cut) = parse_documents_bounded("a: 1\nb: [1, 2]\n");
        assert_eq!((docs.len(), cut), (1, false));
        let many = "- 1\n".repeat(MAX_NODES + 10);
        let (docs, cut) = parse_documents_bounded(&many);
        assert!(cut);
        assert!(docs.len() <= 1);
    }
}
