//! Detector throughput on a deterministic ~16 MiB corpus of mixed content.
//!
//! The corpus is generated in memory from a fixed seed: text files (INI/YAML/JSON configs,
//! shell scripts, source code in several languages, log files) in which the words password,
//! secret, token, key and auth turn up about as often as they do in real trees, binary files
//! (random bytes and ELF-like objects with embedded strings) and gzip-compressed files. About
//! twenty secret-shaped random values are planted in the text so that the regex and validator
//! paths run too, not only the prefilter.
//!
//! Every "file" is scanned with its own `Detector::scan` call, as the scanner does.
//!
//! Groups:
//! - `detector/full_rules`, `detector/10_rules`: the whole corpus, all built-in rules vs. the
//!   first ten by id.
//! - `detector_scaling/{synthetic_800,doubled}`: how the keyword prefilter scales with the
//!   rule count. `synthetic_800` is the built-in set plus synthetic provider rules (distinct
//!   keywords: a random prefix like `qzvk_`, or a made-up provider name before a key
//!   assignment) up to [`SCALED_RULES`], as new provider rules add distinct keywords;
//!   `doubled` loads every built-in rule twice under other ids (the same keywords), the worst
//!   case where every keyword hit opens twice the windows.
//! - `detector_kind/{text,binary,compressed}`: one kind of content, all built-in rules.
//!
//! Run: `cargo bench --bench detector` (or `-- --test` to run each benchmark once).
//! `STOWAWAY_BENCH_CORPUS_OUT=FILE` also writes the corpus to FILE.

use std::hint::black_box;
use std::io::Write;
use std::ops::Range;
use std::time::Duration;

use base64::Engine as _;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;
use stowaway::detect::rules::{builtin_rules, parse_rule_file};
use stowaway::detect::{Detector, Rule};

const SEED: u64 = 0x5709_a3a7_2024_0001;
const TEXT_BYTES: usize = 10 << 20;
const BINARY_BYTES: usize = 9 << 19; // 4.5 MiB
const COMPRESSED_BYTES: usize = 3 << 19; // 1.5 MiB

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Text,
    Binary,
    Compressed,
}

struct Corpus {
    data: Vec<u8>,
    files: Vec<(Kind, Range<usize>)>,
    planted: usize,
}

impl Corpus {
    fn slices(&self, kind: Option<Kind>) -> Vec<&[u8]> {
        self.files
            .iter()
            .filter(|(k, _)| kind.is_none_or(|want| *k == want))
            .map(|(_, range)| &self.data[range.clone()])
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Word lists

const NOUNS: &[&str] = &[
    "server",
    "cache",
    "queue",
    "worker",
    "client",
    "session",
    "buffer",
    "request",
    "response",
    "handler",
    "config",
    "module",
    "service",
    "timeout",
    "retry",
    "stream",
    "channel",
    "record",
    "index",
    "table",
    "user",
    "account",
    "profile",
    "image",
    "layer",
    "volume",
    "network",
    "route",
    "policy",
    "metric",
    "event",
    "batch",
    "job",
    "task",
    "node",
    "cluster",
    "region",
    "bucket",
    "object",
    "file",
    "path",
    "socket",
    "port",
    "host",
    "endpoint",
    "backend",
    "frontend",
    "proxy",
    "log",
    "level",
    "limit",
    "pool",
    "thread",
    "schema",
    "migration",
    "template",
    "asset",
    "bundle",
    "package",
    "release",
    "build",
    "target",
    "cursor",
    "window",
];
const VERBS: &[&str] = &[
    "start", "stop", "load", "parse", "read", "write", "open", "close", "send", "receive", "build",
    "fetch", "update", "delete", "create", "resolve", "flush", "sync", "render", "validate",
    "encode", "decode", "connect", "schedule", "spawn", "collect", "compute", "merge", "split",
    "apply", "check", "emit", "drain", "register", "lookup", "compress",
];
const ADJECTIVES: &[&str] = &[
    "default",
    "max",
    "min",
    "local",
    "remote",
    "primary",
    "secondary",
    "internal",
    "public",
    "private",
    "temp",
    "new",
    "old",
    "active",
    "idle",
    "shared",
    "global",
    "pending",
    "stale",
    "cached",
    "raw",
    "total",
    "current",
    "next",
    "last",
    "first",
];
const SENSITIVE: &[&str] = &[
    "password",
    "secret",
    "token",
    "key",
    "auth",
    "api_key",
    "credentials",
    "passwd",
    "access_key",
    "auth_token",
    "client_secret",
    "private_key",
];
/// Values given to sensitive-looking keys: references and placeholders, not secrets.
const SENSITIVE_VALUES: &[&str] = &[
    "${DB_PASSWORD}",
    "changeme",
    "<redacted>",
    "",
    "/run/secrets/db_password",
    "env:API_TOKEN",
    "file:///etc/app/keyfile",
    "${{ secrets.DEPLOY_KEY }}",
    "xxxxxxxx",
    "null",
    "vault:secret/data/app#token",
    "REPLACE_ME",
];
const HOSTS: &[&str] = &[
    "db.internal",
    "cache-01.prod.local",
    "localhost",
    "api.example.org",
    "10.0.3.17",
    "queue.svc.cluster.local",
    "registry.local:5000",
    "metrics.example.net",
];
const LEVELS: &[&str] = &[
    "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR", "TRACE",
];
const COMMANDS: &[&str] = &[
    "mkdir -p",
    "rm -rf",
    "cp -a",
    "chmod 0644",
    "chown app:app",
    "ln -sf",
    "touch",
    "cat",
    "grep -q",
    "sed -i",
    "tar -xzf",
    "install -m 0755",
    "systemctl restart",
    "curl -fsSL",
];
const PACKAGES: &[&str] = &[
    "ca-certificates",
    "curl",
    "git",
    "build-essential",
    "libssl-dev",
    "pkg-config",
    "python3",
    "python3-pip",
    "openssh-client",
    "tzdata",
    "locales",
    "unzip",
    "jq",
    "netcat-openbsd",
];
const MESSAGES: &[&str] = &[
    "connection refused",
    "request completed",
    "retrying after backoff",
    "cache miss",
    "listening on",
    "worker started",
    "shutting down gracefully",
    "invalid input",
    "rate limit exceeded",
    "flushed batch",
    "file not found",
    "permission denied",
    "health check passed",
    "loaded configuration",
    "authentication succeeded",
    "token refreshed",
    "session expired",
];

// ---------------------------------------------------------------------------------------------
// Generators

struct Gen {
    rng: fastrand::Rng,
}

impl Gen {
    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.rng.usize(..list.len())]
    }

    /// A word, sensitive about once in `1 / p`.
    fn word(&mut self) -> &'static str {
        match self.rng.u32(..100) {
            0..=1 => self.pick(SENSITIVE),
            2..=40 => self.pick(VERBS),
            41..=60 => self.pick(ADJECTIVES),
            _ => self.pick(NOUNS),
        }
    }

    fn snake(&mut self) -> String {
        let n = self.rng.usize(1..=3);
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join("_")
    }

    fn camel(&mut self) -> String {
        let n = self.rng.usize(1..=3);
        let mut out = String::new();
        for i in 0..n {
            let w = self.word().replace('_', "");
            if i == 0 {
                out.push_str(&w);
            } else {
                let mut chars = w.chars();
                if let Some(c) = chars.next() {
                    out.push(c.to_ascii_uppercase());
                    out.push_str(chars.as_str());
                }
            }
        }
        out
    }

    fn sentence(&mut self, words: Range<usize>) -> String {
        let words = self.rng.usize(words);
        let mut out = String::new();
        for i in 0..words {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(self.word());
        }
        out
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n).map(|_| self.rng.digit(16)).collect()
    }

    fn value(&mut self, key: &str) -> String {
        if SENSITIVE.iter().any(|s| key.contains(s)) {
            return format!("\"{}\"", self.pick(SENSITIVE_VALUES));
        }
        match self.rng.u32(..9) {
            0 => self.rng.u32(..65536).to_string(),
            1 => self.rng.bool().to_string(),
            2 => format!("\"{}\"", self.sentence(1..4)),
            3 => format!("\"/var/lib/{}/{}\"", self.pick(NOUNS), self.snake()),
            4 => format!("\"{}:{}\"", self.pick(HOSTS), self.rng.u32(1024..10000)),
            5 => format!("\"{}s\"", self.rng.u32(1..600)),
            6 => format!("{}.{}", self.rng.u32(..100), self.rng.u32(..1000)),
            7 => format!("\"https://{}/{}\"", self.pick(HOSTS), self.snake()),
            _ => format!("\"{}\"", self.snake()),
        }
    }

    fn ini(&mut self, size: usize) -> String {
        let mut out = String::new();
        while out.len() < size {
            out.push_str(&format!("\n[{}]\n", self.snake()));
            if self.rng.u32(..3) == 0 {
                out.push_str(&format!("; {}\n", self.sentence(3..10)));
            }
            for _ in 0..self.rng.usize(2..12) {
                let key = self.snake();
                let value = self.value(&key);
                out.push_str(&format!("{key} = {}\n", value.trim_matches('"')));
            }
        }
        out
    }

    fn yaml(&mut self, size: usize) -> String {
        let mut out = String::from("---\n");
        while out.len() < size {
            out.push_str(&format!("{}:\n", self.snake()));
            for _ in 0..self.rng.usize(1..6) {
                let key = self.snake();
                if self.rng.u32(..4) == 0 {
                    out.push_str(&format!("  {key}:\n"));
                    for _ in 0..self.rng.usize(1..5) {
                        let v = self.snake();
                        out.push_str(&format!("    - {v}\n"));
                    }
                } else {
                    let value = self.value(&key);
                    out.push_str(&format!("  {key}: {value}\n"));
                }
            }
            if self.rng.u32(..5) == 0 {
                out.push_str(&format!("# {}\n", self.sentence(3..12)));
            }
        }
        out
    }

    fn json_value(&mut self, depth: usize, out: &mut String, indent: usize) {
        let pad = "  ".repeat(indent);
        if depth == 0 || self.rng.u32(..3) != 0 {
            let key = self.snake();
            out.push_str(&self.value(&key).replace('\'', ""));
            return;
        }
        if self.rng.bool() {
            out.push_str("{\n");
            let n = self.rng.usize(1..6);
            for i in 0..n {
                let key = self.camel();
                out.push_str(&format!("{pad}  \"{key}\": "));
                if SENSITIVE
                    .iter()
                    .any(|s| key.to_lowercase().contains(&s.replace('_', "")))
                {
                    out.push_str(&format!("\"{}\"", self.pick(SENSITIVE_VALUES)));
                } else {
                    self.json_value(depth - 1, out, indent + 1);
                }
                out.push_str(if i + 1 < n { ",\n" } else { "\n" });
            }
            out.push_str(&format!("{pad}}}"));
        } else {
            out.push('[');
            let n = self.rng.usize(1..5);
            for i in 0..n {
                self.json_value(depth - 1, out, indent + 1);
                if i + 1 < n {
                    out.push_str(", ");
                }
            }
            out.push(']');
        }
    }

    fn json(&mut self, size: usize) -> String {
        let mut out = String::from("{\n");
        let mut first = true;
        while out.len() < size {
            if !first {
                out.push_str(",\n");
            }
            first = false;
            let key = self.camel();
            out.push_str(&format!("  \"{key}\": "));
            self.json_value(4, &mut out, 1);
        }
        out.push_str("\n}\n");
        out
    }

    fn shell(&mut self, size: usize) -> String {
        let mut out = String::from("#!/bin/sh\nset -eu\n\n");
        while out.len() < size {
            match self.rng.u32(..7) {
                0 => {
                    let var = self.snake().to_uppercase();
                    let value = self.value(&var.to_lowercase());
                    out.push_str(&format!("export {var}={value}\n"));
                }
                1 => {
                    let pkgs: Vec<&str> = (0..self.rng.usize(2..6))
                        .map(|_| self.pick(PACKAGES))
                        .collect();
                    out.push_str(&format!(
                        "apt-get update && apt-get install -y --no-install-recommends \\\n    {}\n",
                        pkgs.join(" \\\n    ")
                    ));
                }
                2 => {
                    let var = self.snake();
                    out.push_str(&format!(
                        "for {var} in $(ls /opt/{}); do\n    {} \"/opt/{}/${var}\"\ndone\n",
                        self.pick(NOUNS),
                        self.pick(COMMANDS),
                        self.pick(NOUNS)
                    ));
                }
                3 => {
                    let var = self.snake().to_uppercase();
                    out.push_str(&format!(
                        "if [ -z \"${{{var}:-}}\" ]; then\n    echo \"{}\" >&2\n    exit 1\nfi\n",
                        self.sentence(3..8)
                    ));
                }
                4 => out.push_str(&format!("# {}\n", self.sentence(4..14))),
                5 => {
                    let func = self.snake();
                    out.push_str(&format!(
                        "{func}() {{\n    local {}=\"$1\"\n    {} \"/srv/{}\" || return 1\n}}\n",
                        self.snake(),
                        self.pick(COMMANDS),
                        self.snake()
                    ));
                }
                _ => out.push_str(&format!(
                    "{} /var/lib/{}/{}\n",
                    self.pick(COMMANDS),
                    self.pick(NOUNS),
                    self.snake()
                )),
            }
        }
        out
    }

    fn source(&mut self, size: usize) -> String {
        let lang = self.rng.u32(..6);
        let mut out = String::new();
        match lang {
            0 => out.push_str("use std::collections::HashMap;\nuse std::io::{self, Read};\n\n"),
            1 => out.push_str("import os\nimport sys\nimport json\nfrom typing import Any\n\n"),
            2 => out.push_str(
                "'use strict';\nconst fs = require('fs');\nconst path = require('path');\n\n",
            ),
            3 => out.push_str("package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\n"),
            4 => out.push_str("#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n"),
            _ => out.push_str(
                "package org.example.app;\n\nimport java.util.List;\nimport java.util.Map;\n\n",
            ),
        }
        while out.len() < size {
            let name = if lang == 0 || lang == 1 {
                self.snake()
            } else {
                self.camel()
            };
            let a = self.snake();
            let b = self.camel();
            let comment = self.sentence(4..14);
            let lit = self.value(&a);
            let n = self.rng.u32(..1000);
            let body = match lang {
                0 => format!(
                    "/// {comment}\npub fn {name}({a}: &str, {b}: usize) -> io::Result<usize> {{\n    let mut {b}_map: HashMap<String, usize> = HashMap::new();\n    if {a}.len() > {n} {{\n        return Ok({b});\n    }}\n    {b}_map.insert({a}.to_string(), {b});\n    let label = {lit};\n    Ok(label.len() + {b}_map.len())\n}}\n\n"
                ),
                1 => format!(
                    "def {name}({a}: str, {b}: int = {n}) -> Any:\n    \"\"\"{comment}.\"\"\"\n    if not {a}:\n        raise ValueError(\"{a} is required\")\n    result = {{\"{b}\": {b}, \"value\": {lit}}}\n    for item in os.listdir(\"/tmp\"):\n        result[item] = len(item)\n    return json.dumps(result)\n\n\n"
                ),
                2 => format!(
                    "// {comment}\nfunction {name}({a}, {b}) {{\n  const opts = {{ {b}: {b} || {n}, label: {lit} }};\n  if (!{a}) {{\n    throw new Error('{a} missing');\n  }}\n  return fs.readFileSync(path.join(__dirname, {a}), 'utf8').length + opts.{b};\n}}\nmodule.exports.{name} = {name};\n\n"
                ),
                3 => format!(
                    "// {name} {comment}\nfunc {name}({a} string, {b} int) (int, error) {{\n\tif len({a}) > {n} {{\n\t\treturn 0, fmt.Errorf(\"{a} too long: %d\", len({a}))\n\t}}\n\tlabel := {lit}\n\tfmt.Fprintln(os.Stderr, label)\n\treturn {b} + len(label), nil\n}}\n\n"
                ),
                4 => format!(
                    "/* {comment} */\nstatic int {name}(const char *{a}, size_t {b})\n{{\n    char buf[{n}];\n    if ({a} == NULL || {b} >= sizeof(buf))\n        return -1;\n    memcpy(buf, {a}, {b});\n    buf[{b}] = '\\0';\n    fprintf(stderr, \"%s: %s\\n\", \"{name}\", buf);\n    return (int)strlen(buf);\n}}\n\n"
                ),
                _ => format!(
                    "    /** {comment} */\n    public int {name}(String {a}, int {b}) {{\n        if ({a} == null) {{\n            throw new IllegalArgumentException(\"{a}\");\n        }}\n        Map<String, Integer> m = Map.of({a}, {b});\n        String label = {lit};\n        return m.size() + label.length() + {n};\n    }}\n\n"
                ),
            };
            out.push_str(&body);
        }
        out
    }

    fn log(&mut self, size: usize) -> String {
        let mut out = String::new();
        let mut t: u64 = 1_715_000_000_000 + self.rng.u64(..10_000_000);
        while out.len() < size {
            t += self.rng.u64(..2000);
            let (secs, millis) = (t / 1000, t % 1000);
            let (day, rem) = (secs / 86400 % 28 + 1, secs % 86400);
            out.push_str(&format!(
                "2024-05-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z {:5} [{}-{}] {} request_id={} {}={} duration_ms={}\n",
                rem / 3600,
                rem / 60 % 60,
                rem % 60,
                self.pick(LEVELS),
                self.pick(NOUNS),
                self.rng.u32(..16),
                self.pick(MESSAGES),
                self.hex(16),
                self.snake(),
                self.rng.u32(..100000),
                self.rng.u32(..5000),
            ));
        }
        out
    }

    fn text_file(&mut self) -> String {
        // Mostly small files, a few large ones (logs, generated code).
        let size = match self.rng.u32(..100) {
            0..=59 => self.rng.usize(400..8 << 10),
            60..=94 => self.rng.usize(8 << 10..64 << 10),
            _ => self.rng.usize(64 << 10..768 << 10),
        };
        match self.rng.u32(..8) {
            0 => self.ini(size),
            1 => self.yaml(size),
            2 => self.json(size),
            3 => self.shell(size),
            4 | 5 => self.source(size),
            _ => self.log(size),
        }
    }

    fn random_binary(&mut self, size: usize) -> Vec<u8> {
        let mut out = vec![0u8; size];
        self.rng.fill(&mut out);
        out
    }

    /// Something shaped like an ELF object: a header, "code" with a skewed opcode
    /// distribution, zero padding, and a string table of symbols and messages.
    fn elf_like(&mut self, size: usize) -> Vec<u8> {
        const OPCODES: &[u8] = &[
            0x48, 0x48, 0x89, 0x8b, 0xe8, 0x00, 0x00, 0x00, 0xff, 0xc3, 0x0f, 0x1f, 0x44, 0x83,
            0x85, 0xc0, 0x74, 0x75, 0xeb, 0x31, 0xd2, 0x41, 0x5d, 0x55, 0x53, 0x5b, 0x90,
        ];
        let mut out = Vec::with_capacity(size + 4096);
        out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0\x3e\0\x01\0\0\0");
        out.resize(64, 0);
        while out.len() < size {
            match self.rng.u32(..10) {
                0..=5 => {
                    for _ in 0..self.rng.usize(256..8192) {
                        if self.rng.u32(..4) == 0 {
                            out.push(self.rng.u8(..));
                        } else {
                            out.push(OPCODES[self.rng.usize(..OPCODES.len())]);
                        }
                    }
                }
                6 => out.resize(out.len() + self.rng.usize(16..4096), 0),
                _ => {
                    // String table: mangled-ish symbols, messages, version tags.
                    for _ in 0..self.rng.usize(8..64) {
                        let s = match self.rng.u32(..5) {
                            0 => {
                                let (a, b) = (self.pick(NOUNS), self.pick(VERBS));
                                format!("_ZN{}{a}{}{b}17h{}E", a.len(), b.len(), self.hex(16))
                            }
                            1 => format!("{}: %s", self.pick(MESSAGES)),
                            2 => format!("GLIBC_2.{}", self.rng.u32(2..39)),
                            3 => self.snake(),
                            _ => format!("{}_{}", self.pick(VERBS), self.camel()),
                        };
                        out.extend_from_slice(s.as_bytes());
                        out.push(0);
                    }
                }
            }
        }
        out.truncate(size);
        out
    }

    fn binary_file(&mut self) -> Vec<u8> {
        let size = self.rng.usize(64 << 10..1536 << 10);
        if self.rng.u32(..3) == 0 {
            self.random_binary(size)
        } else {
            self.elf_like(size)
        }
    }

    fn compressed_file(&mut self) -> Vec<u8> {
        let mut text = String::new();
        let target = self.rng.usize(32 << 10..512 << 10);
        while text.len() < target {
            text.push_str(&self.text_file());
        }
        let mut encoder = GzEncoder::new(Vec::new(), Compression::new(6));
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    // --- planted secrets (random values with the shape of real credentials) ---

    fn chars_from(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[self.rng.usize(..alphabet.len())] as char)
            .collect()
    }

    fn planted_secret(&mut self, which: usize) -> String {
        const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        match which % 6 {
            0 => format!(
                "[default]\naws_access_key_id = AKIA{}\naws_secret_access_key = {}\n",
                self.chars_from(BASE32, 16),
                self.chars_from(BASE64, 40)
            ),
            1 => {
                // 30 random characters and their CRC32 in base62, as GitHub's format has it.
                let body = self.chars_from(BASE62, 30);
                let mut crc = crc32fast::hash(body.as_bytes());
                let mut check = [b'0'; 6];
                for slot in check.iter_mut().rev() {
                    *slot = BASE62[(crc % 62) as usize];
                    crc /= 62;
                }
                format!(
                    "export GITHUB_TOKEN=ghp_{body}{}\n",
                    String::from_utf8_lossy(&check)
                )
            }
            2 => format!(
                "gitlab_token: glpat-{}\n",
                self.chars_from(
                    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-",
                    20
                )
            ),
            3 => format!(
                "SLACK_BOT_TOKEN=xoxb-{}-{}-{}\n",
                self.rng.u64(1_000_000_000..9_999_999_999),
                self.rng.u64(1_000_000_000_000..9_999_999_999_999),
                self.chars_from(BASE62, 24)
            ),
            4 => format!(
                "STRIPE_SECRET_KEY=sk_live_{}\n",
                self.chars_from(BASE62, 24)
            ),
            _ => {
                // Random bytes inside a DER SEQUENCE header, base64 in 64-column lines.
                let mut der = vec![0x30, 0x82, 0x04, 0xa0];
                der.extend((0..1184).map(|_| self.rng.u8(..)));
                let body = base64::engine::general_purpose::STANDARD.encode(&der);
                let mut pem = String::from("-----BEGIN RSA PRIVATE KEY-----\n");
                for line in body.as_bytes().chunks(64) {
                    pem.push_str(std::str::from_utf8(line).unwrap());
                    pem.push('\n');
                }
                pem.push_str("-----END RSA PRIVATE KEY-----\n");
                pem
            }
        }
    }
}

fn build_corpus() -> Corpus {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(SEED),
    };
    let mut text_files: Vec<Vec<u8>> = Vec::new();
    let mut total = 0;
    while total < TEXT_BYTES {
        let file = g.text_file().into_bytes();
        total += file.len();
        text_files.push(file);
    }
    // Plant secrets in 20 distinct text files, at a line boundary.
    let planted = 20;
    let targets = g.rng.choose_multiple(0..text_files.len(), planted);
    for (i, index) in targets.into_iter().enumerate() {
        let secret = g.planted_secret(i);
        let file = &mut text_files[index];
        let mut at = g.rng.usize(..=file.len());
        while at > 0 && file[at - 1] != b'\n' {
            at -= 1;
        }
        file.splice(at..at, secret.into_bytes());
    }
    let mut files: Vec<(Kind, Vec<u8>)> = text_files.into_iter().map(|f| (Kind::Text, f)).collect();
    let mut total = 0;
    while total < BINARY_BYTES {
        let file = g.binary_file();
        total += file.len();
        files.push((Kind::Binary, file));
    }
    let mut total = 0;
    while total < COMPRESSED_BYTES {
        let file = g.compressed_file();
        total += file.len();
        files.push((Kind::Compressed, file));
    }
    g.rng.shuffle(&mut files);
    let mut corpus = Corpus {
        data: Vec::new(),
        files: Vec::new(),
        planted,
    };
    for (kind, file) in files {
        let start = corpus.data.len();
        corpus.data.extend_from_slice(&file);
        corpus.files.push((kind, start..corpus.data.len()));
    }
    corpus
}

/// The rule count of the `synthetic_800` case.
const SCALED_RULES: usize = 800;

/// Synthetic provider rules with distinct keywords, in the shapes real provider rules take: a
/// token prefix, or a provider name before a key assignment.
fn synthetic_rules(count: usize) -> Vec<Rule> {
    let mut rng = fastrand::Rng::with_seed(SEED ^ 0x5ca1e);
    let mut letters = |n: usize| -> String { (0..n).map(|_| rng.lowercase()).collect() };
    let mut text = String::new();
    for i in 0..count {
        let (keyword, regex) = if i % 2 == 0 {
            let prefix = format!("{}_", letters(3 + i % 3));
            let regex = format!("({prefix}[A-Za-z0-9]{{32,40}})");
            (prefix, regex)
        } else {
            let name = letters(5 + i % 4);
            let regex = format!(
                r#"(?i){name}[\w.-]{{0,20}}(?:key|token|secret)\W{{0,5}}[=:]\s*["']?([a-z0-9]{{32}})"#
            );
            (name, regex)
        };
        text.push_str(&format!(
            "[[rules]]\nid = \"synthetic-{i}\"\nname = \"Synthetic {i}\"\nseverity = \"high\"\nkeywords = [\"{keyword}\"]\nregex = '''{regex}'''\n\n"
        ));
    }
    parse_rule_file(&text, "synthetic.toml").expect("synthetic rules compile")
}

fn scan_all(detector: &Detector, files: &[&[u8]]) -> usize {
    files
        .iter()
        .map(|file| detector.scan(black_box(file)).len())
        .sum()
}

fn bytes_of(files: &[&[u8]]) -> u64 {
    files.iter().map(|f| f.len() as u64).sum()
}

fn benches(c: &mut Criterion) {
    let corpus = build_corpus();
    let rules = builtin_rules().expect("built-in rules load");
    let mut first_ten: Vec<Rule> = rules.clone();
    first_ten.sort_by(|a, b| a.id.cmp(&b.id));
    first_ten.truncate(10);
    let mut scaled = rules.clone();
    scaled.extend(synthetic_rules(SCALED_RULES.saturating_sub(rules.len())));
    let mut doubled = rules.clone();
    doubled.extend(rules.iter().cloned().map(|mut rule| {
        rule.id.push_str("-again");
        rule
    }));
    let scaled = Detector::new(scaled).expect("detector (synthetic rules)");
    let doubled = Detector::new(doubled).expect("detector (doubled rules)");
    let full = Detector::new(rules).expect("detector (all rules)");
    let ten = Detector::new(first_ten).expect("detector (10 rules)");

    let all = corpus.slices(None);
    let text = corpus.slices(Some(Kind::Text));
    let binary = corpus.slices(Some(Kind::Binary));
    let compressed = corpus.slices(Some(Kind::Compressed));
    eprintln!(
        "corpus: {:.1} MiB in {} files (text {:.1} MiB / {} files, binary {:.1} MiB, compressed {:.1} MiB), {} secrets planted",
        corpus.data.len() as f64 / 1048576.0,
        all.len(),
        bytes_of(&text) as f64 / 1048576.0,
        text.len(),
        bytes_of(&binary) as f64 / 1048576.0,
        bytes_of(&compressed) as f64 / 1048576.0,
        corpus.planted,
    );
    eprintln!(
        "rules: {} built-in, {} in the 10-rule set; matches on the corpus: {} (all rules), {} (10 rules)",
        full.rules().len(),
        ten.rules().len(),
        scan_all(&full, &all),
        scan_all(&ten, &all),
    );

    // STOWAWAY_BENCH_CORPUS_OUT=FILE writes the corpus out, to study it with other tools.
    if let Some(path) = std::env::var_os("STOWAWAY_BENCH_CORPUS_OUT") {
        std::fs::write(&path, &corpus.data).expect("write the corpus");
    }

    // STOWAWAY_BENCH_SHOW_MATCHES=1 lists every match (to check what the rules fire on).
    let show_matches = std::env::var_os("STOWAWAY_BENCH_SHOW_MATCHES").is_some();
    let mut by_rule = std::collections::BTreeMap::<&str, usize>::new();
    for file in &all {
        for m in full.scan(file) {
            if show_matches {
                eprintln!(
                    "  {}: {}",
                    full.rules()[m.rule].id,
                    String::from_utf8_lossy(&m.secret)
                );
            }
            *by_rule.entry(full.rules()[m.rule].id.as_str()).or_default() += 1;
        }
    }
    let listed: Vec<String> = by_rule.iter().map(|(id, n)| format!("{id} x{n}")).collect();
    eprintln!("matches by rule: {}", listed.join(", "));

    let mut group = c.benchmark_group("detector");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Bytes(bytes_of(&all)));
    group.bench_function("full_rules", |b| b.iter(|| scan_all(&full, &all)));
    group.bench_function("10_rules", |b| b.iter(|| scan_all(&ten, &all)));
    group.finish();

    let mut group = c.benchmark_group("detector_scaling");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Bytes(bytes_of(&all)));
    eprintln!(
        "scaling: {} rules (synthetic), {} rules (doubled)",
        scaled.rules().len(),
        doubled.rules().len()
    );
    group.bench_function("synthetic_800", |b| b.iter(|| scan_all(&scaled, &all)));
    group.bench_function("doubled", |b| b.iter(|| scan_all(&doubled, &all)));
    group.finish();

    let mut group = c.benchmark_group("detector_kind");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6));
    for (name, files) in [
        ("text", &text),
        ("binary", &binary),
        ("compressed", &compressed),
    ] {
        group.throughput(Throughput::Bytes(bytes_of(files)));
        group.bench_function(format!("{name}/full_rules"), |b| {
            b.iter(|| scan_all(&full, files))
        });
    }
    group.finish();
}

criterion_group!(detector, benches);
criterion_main!(detector);
