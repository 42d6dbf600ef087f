//! Test, fixture and example paths inside a package. For ecosystems without per-file hashes
//! (npm, gem, composer, maven) issue 11 treats only these as vendor content: a package's test
//! suite ships its test keys to everyone, while any other file in it may have been edited.

/// Directory names that hold a package's tests, fixtures or examples.
const TEST_DIRECTORIES: &[&str] = &[
    "test",
    "tests",
    "testdata",
    "test-data",
    "test_data",
    "testing",
    "__tests__",
    "__mocks__",
    "__fixtures__",
    "spec",
    "specs",
    "fixture",
    "fixtures",
    "example",
    "examples",
    "sample",
    "samples",
];

/// File name endings of test sources by language convention (Go, Python, JS/TS, Ruby).
const TEST_FILE_SUFFIXES: &[&str] = &[
    "_test.go",
    "_test.py",
    ".test.js",
    ".test.mjs",
    ".test.cjs",
    ".test.ts",
    ".spec.js",
    ".spec.ts",
    "_spec.rb",
    "_test.rb",
];

/// Whether `relative`, a path inside a package (relative to its root), is a test, fixture or
/// example path. Pass the path relative to the package, not the image: an application's own
/// `test/` directory around a package must not count.
pub fn is_test_or_example_path(relative: &str) -> bool {
    is_under_or_named(relative, TEST_DIRECTORIES, is_test_file)
}

/// Whether a directory of `relative` (a path inside a package) is one of `directories`, in any
/// case, or else whether its file name passes `is_file`.
fn is_under_or_named(relative: &str, directories: &[&str], is_file: fn(&str) -> bool) -> bool {
    let mut components = relative.split('/').filter(|c| !c.is_empty()).peekable();
    while let Some(component) = components.next() {
        if components.peek().is_none() {
            return is_file(component);
        }
        if directories
            .iter()
            .any(|dir| component.eq_ignore_ascii_case(dir))
        {
            return true;
        }
    }
    false
}

/// Directory names that hold a package's documentation.
const DOCUMENTATION_DIRECTORIES: &[&str] = &["doc", "docs", "example", "examples"];

/// Whether `relative`, a path inside an npm package (relative to its root), is documentation
/// or type declarations, which no JavaScript runtime executes: `README*`, `CHANGELOG*`,
/// `HISTORY*`, Markdown and reStructuredText files, anything under `doc/`, `docs/`,
/// `example/` or `examples/`, the AWS SDK's `*.examples.json` (request and response examples
/// for its documentation) and TypeScript declarations (`*.d.ts`, `*.d.mts`, `*.d.cts`, which
/// hold types and doc comments, never code). Other files, the package's `.js`, `.json` and
/// `.node` above all, are runtime content and keep their severity.
pub fn is_documentation_path(relative: &str) -> bool {
    is_under_or_named(relative, DOCUMENTATION_DIRECTORIES, is_documentation_file)
}

fn is_documentation_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    // `README`, `README.md`, `CHANGELOG.txt` — but not `readme.js`, which is code.
    let document_extension = |rest: &str| {
        [
            "md", "markdown", "txt", "rst", "adoc", "asciidoc", "org", "html", "textile",
        ]
        .contains(&rest)
    };
    ["readme", "changelog", "history", "changes"]
        .iter()
        .any(|stem| {
            lower == *stem
                || lower
                    .strip_prefix(stem)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(document_extension)
        })
        || [
            ".md",
            ".markdown",
            ".rst",
            ".examples.json",
            ".d.ts",
            ".d.mts",
            ".d.cts",
        ]
        .iter()
        .any(|suffix| lower.ends_with(suffix) && lower.len() > suffix.len())
}

fn is_test_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    TEST_FILE_SUFFIXES
        .iter()
        .any(|suffix| lower.ends_with(suffix))
        || (lower.starts_with("test_") && lower.ends_with(".py"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_fixture_and_example_paths() {
        for path in [
            "test/key.pem",
            "lib/tests/data/server.key",
            "src/crypto/testdata/rsa.pem",
            "__tests__/a.js",
            "spec/fixtures/id_rsa",
            "Examples/config.json",
            "net/http/server_test.go",
            "pkg/test_ssl.py",
            "src/auth.spec.ts",
        ] {
            assert!(is_test_or_example_path(path), "{path}");
        }
    }

    #[test]
    fn documentation_and_declarations() {
        for path in [
            "README.md",
            "readme",
            "CHANGELOG",
            "docs/api.html",
            "doc/usage.js",
            "examples/client.js",
            "apis/ec2-2016-11-15.examples.json",
            "dist-types/commands/CreateTokenCommand.d.ts",
            "build/src/apis/x/v1.d.mts",
            "lib/notes.markdown",
        ] {
            assert!(is_documentation_path(path), "{path}");
        }
        for path in [
            "index.js",
            "dist-cjs/index.js",
            "apis/ec2-2016-11-15.min.json",
            "lib/readme.js",
            "lib/docs.js",
            ".d.ts",
            "package.json",
            "",
        ] {
            assert!(!is_documentation_path(path), "{path}");
        }
    }

    #[test]
    fn ordinary_paths_are_not() {
        for path in [
            "lib/index.js",
            "config/secrets.json",
            "test",
            "contest/key.pem",
            "latest.go",
            "",
        ] {
            assert!(!is_test_or_example_path(path), "{path}");
        }
    }
}
