#!/usr/bin/env bash
# Rewrites the generated section of signatures/README.md (between its BEGIN GENERATED and
# END GENERATED lines) from the rule files, with `stowaway rules list --format markdown`.
# tests/signatures.rs fails while the committed README differs from what this writes.
set -euo pipefail
cd "$(dirname "$0")/.."
readme=signatures/README.md
table=$(mktemp)
trap 'rm -f "$table"' EXIT
cargo run --quiet -- rules list --format markdown > "$table"
python3 - "$readme" "$table" <<'PY'
import sys
readme, table = sys.argv[1], sys.argv[2]
text = open(readme).read()
begin = text.index("<!-- BEGIN GENERATED")
begin = text.index("\n", begin) + 1
end = text.index("<!-- END GENERATED -->")
generated = open(table).read().strip("\n")
open(readme, "w").write(text[:begin] + generated + "\n" + text[end:])
PY
echo "rewrote the generated section of $readme"
