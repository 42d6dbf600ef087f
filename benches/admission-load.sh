#!/usr/bin/env bash
# Load on the admission webhook, decided from cached results: what a cluster's API server
# sends when many pods start at once. Everything runs on 127.0.0.1:
#
#   - a real registry (Debian's docker-registry) with two images pushed by skopeo: the demo
#     image with its leaked secrets (testdata/demo-leaky.tar) and a clean image made by umoci;
#   - `stowaway serve` over TLS (a certificate made here by openssl), which scans both images
#     once (POST /scan) and keeps the reports in its cache;
#   - wrk, for DURATION seconds with CONNECTIONS connections, sending AdmissionReviews in turn:
#     a Pod with the leaky image by tag (denied), a Deployment with the clean image by tag
#     (allowed), and a Pod with the leaky image pinned by digest (denied).
#
# Tags are resolved once and then remembered (tag_cache_seconds), as in production, so every
# request is decided from the cache. Prints wrk's summary with latency percentiles, the
# decisions seen, the server's admission latency histogram and its RSS.
#
#   bash benches/admission-load.sh [DURATION_SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-30}"
connections="${2:-16}"

for tool in docker-registry skopeo umoci openssl wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "admission-load: missing $tool (apt-get install $tool)" >&2; exit 1; }
done

cargo build --release --quiet
stowaway="${CARGO_TARGET_DIR:-$PWD/target}/release/stowaway"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

bench=admission-load
# shellcheck source=benches/admission-common.sh
source benches/admission-common.sh

# --- registry with a leaky and a clean image --------------------------------------------------
start_registry_with_images

# --- the server, over TLS ---------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=stowaway \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
cat >"$work/policy.toml" <<TOML
severity_threshold = "high"
on_unknown = "allow"
time_budget_ms = 3000
tag_cache_seconds = 3600
allowed_registries = ["127.0.0.1:*"]
TOML
server_port=$(free_port)
"$stowaway" serve --listen "127.0.0.1:$server_port" --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
  --config "$work/policy.toml" --cache-dir "$work/cache" --no-auth -q &
server=$!
pids+=("$server")
url="https://127.0.0.1:$server_port"
wait_for "$url/healthz" "stowaway serve"

scan_both_images "$url" "$url"

# --- the requests -----------------------------------------------------------------------------
write_reviews

echo "decisions (each request once, also resolving and caching the tags):"
for body in 1 2 3; do
  curl -fsk -X POST -H 'Content-Type: application/json' --data-binary "@$work/body$body.json" "$url/admission" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["response"]; print("  %-17s allowed=%s" % (r["uid"], r["allowed"]))'
done

python3 - "$work" >"$work/admission.lua" <<'PY'
import json, sys
bodies = [open(f"{sys.argv[1]}/body{i}.json").read() for i in (1, 2, 3)]
print("local bodies = {" + ", ".join(json.dumps(b) for b in bodies) + "}")
print("""
local threads = {}
function setup(thread) table.insert(threads, thread) end
n = 0
wrong = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, "/admission", nil, bodies[(n % 3) + 1])
end
-- Count answers whose decision is not one a cached result gives (allowed or denied by
-- findings): a warning about an unknown image would mean the cache was missed.
response = function(status, headers, body)
  if status ~= 200 or body:find("no scan result", 1, true) then wrong = wrong + 1 end
end
function done(summary, latency, requests)
  local wrong_total = 0
  for _, thread in ipairs(threads) do wrong_total = wrong_total + thread:get("wrong") end
  local e = summary.errors
  io.write(string.format("errors: %d (connect %d, read %d, write %d, timeout %d, HTTP status %d); answers not decided from the cache: %d\\n",
    e.connect + e.read + e.write + e.timeout + e.status, e.connect, e.read, e.write, e.timeout, e.status, wrong_total))
end
""")
PY

echo
echo "wrk: ${duration}s, $connections connections, 2 threads, against $url/admission"
wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/admission.lua" "$url" | tee "$work/wrk.txt"

echo
echo "server after the run:"
grep -E '^(VmHWM|VmRSS)' "/proc/$server/status" | sed 's/^/  /'
curl -fsk "$url/metrics" | grep -E '^stowaway_(admission|scans|report_cache|cache)' | grep -v '_bucket' | sed 's/^/  /'

if ! grep -q '^errors: 0 .*cache: 0$' "$work/wrk.txt" || grep -qE 'Non-2xx|Socket errors' "$work/wrk.txt"; then
  echo "admission-load: some requests failed or were not decided from the cache (see above)" >&2
  exit 1
fi
