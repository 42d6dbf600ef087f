#!/usr/bin/env bash
# High-availability load on the admission webhook (issue 17): two `stowaway serve` replicas on
# one shared Redis store, decided from the shared result, while one replica is restarted in the
# middle of the run. Everything runs on 127.0.0.1:
#
#   - Debian's redis-server on a free port, with a password, a temporary data directory and
#     append-only persistence;
#   - a real registry (Debian's docker-registry) with two images pushed by skopeo: the demo
#     image with its leaked secrets (testdata/demo-leaky.tar) and a clean image made by umoci;
#   - two replicas of `stowaway serve --store redis://…` over TLS (a certificate made here by
#     openssl) on two ports; one POST /scan of each image warms the shared result;
#   - a load client for DURATION seconds with CONNECTIONS connections (examples/admission_load.rs,
#     rustls and threads; or, with CLIENT=python, benches/admission-ha-client.py, the Python
#     standard library, which takes about three times the CPU per request), sending AdmissionReviews in turn (a Pod with the leaky image by
#     tag: denied; a Deployment with the clean image by tag: allowed; a Pod with the leaky
#     image by digest: denied) to the replicas in turn, retrying a connection error or a 5xx
#     once on the other replica, as the API server does through the Service;
#   - RESTART_AT seconds in, replica 1 gets SIGTERM (it stops accepting, answers what is in
#     flight and exits) and is started again on its port; the client keeps going.
#
# Prints requests/s, p50/p90/p99 latency (as the caller sees it, a retry included), requests,
# retries, errors (a request that failed on both replicas or got a wrong decision; must be 0),
# the decisions seen, answers per replica per second around the restart, the client's share of
# the CPU, each replica's RSS and CPU time, and the load average. Exits 1 on any error.
#
#   bash benches/admission-ha.sh [DURATION_SECONDS] [CONNECTIONS] [RESTART_AT_SECONDS]
#   (defaults: 30 s, 16 connections, restart at 10 s; CLIENT=python for the Python client)
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-30}"
connections="${2:-16}"
restart_at="${3:-10}"

for tool in redis-server docker-registry skopeo umoci openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "admission-ha: missing $tool (apt-get install $tool)" >&2; exit 1; }
done

# STOWAWAY_BIN runs another build (a debug one, to try the script); by default the release
# build, in CARGO_TARGET_DIR when set.
if [ -n "${STOWAWAY_BIN:-}" ]; then
  stowaway="$STOWAWAY_BIN"
else
  cargo build --release --quiet
  stowaway="${CARGO_TARGET_DIR:-$PWD/target}/release/stowaway"
fi
if [ "${CLIENT:-rust}" = python ]; then
  load_client=(python3 benches/admission-ha-client.py)
else
  cargo build --release --quiet --example admission_load
  load_client=("${CARGO_TARGET_DIR:-$PWD/target}/release/examples/admission_load")
fi
work=$(mktemp -d)
pids=()
replica_pids=(0 0)
cleanup() {
  for pid in "${pids[@]}" "${replica_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

bench=admission-ha
# shellcheck source=benches/admission-common.sh
source benches/admission-common.sh

# --- the shared store --------------------------------------------------------------------------
redis_port=$(free_port)
redis_password="stowaway-bench-$RANDOM$RANDOM"
mkdir -p "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" --requirepass "$redis_password" \
  --appendonly yes --appendfsync everysec --save '' --daemonize no --logfile "$work/redis/log" &
pids+=($!)
for _ in $(seq 100); do
  [ "$(REDISCLI_AUTH="$redis_password" redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
  sleep 0.1
done
store="redis://:$redis_password@127.0.0.1:$redis_port"

# --- registry with a leaky and a clean image --------------------------------------------------
start_registry_with_images

# --- two replicas on the store, over TLS -------------------------------------------------------
# A CA (what the webhook's caBundle holds, and the clients trust) and the replicas' certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
  -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$work/tls.ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
  -extfile "$work/tls.ext" -out "$work/tls.crt" 2>/dev/null
cat >"$work/policy.toml" <<TOML
severity_threshold = "high"
on_unknown = "allow"
time_budget_ms = 3000
tag_cache_seconds = 3600
allowed_registries = ["127.0.0.1:*"]
exempt_images = ["registry.k8s.io/*"]
TOML
ports=("$(free_port)" "$(free_port)")
urls=("https://127.0.0.1:${ports[0]}" "https://127.0.0.1:${ports[1]}")
start_replica() { # index
  "$stowaway" serve --listen "127.0.0.1:${ports[$1]}" --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
    --config "$work/policy.toml" --store "$store" --no-auth -q 2>>"$work/replica$1.log" &
  replica_pids[$1]=$!
  wait_for "${urls[$1]}/healthz" "replica $1"
}
start_replica 0
start_replica 1

# The reports are asked of the other replica: the result is shared.
scan_both_images "${urls[0]}" "${urls[1]}"

# --- the requests -----------------------------------------------------------------------------
write_reviews

echo "decisions (each request once on each replica, also resolving the tags into the shared store):"
for index in 0 1; do
  for body in 1 2 3; do
    curl -fsk -X POST -H 'Content-Type: application/json' --data-binary "@$work/body$body.json" "${urls[$index]}/admission" \
      | python3 -c 'import json,sys; r=json.load(sys.stdin)["response"]; print("  replica '"$index"' %-17s allowed=%s" % (r["uid"], r["allowed"]))'
  done
done

echo
echo "load (${load_client[0]##*/}): ${duration}s, $connections connections, replicas ${urls[*]}; replica 1 restarted at ${restart_at}s"
"${load_client[@]}" --url "${urls[0]}" --url "${urls[1]}" --ca "$work/ca.crt" \
  --review "$work/body1.json:deny" --review "$work/body2.json:allow" --review "$work/body3.json:deny" \
  --duration "$duration" --connections "$connections" >"$work/client.json" &
client=$!
pids+=("$client")
sleep "$restart_at"
stopping=$(date +%s.%N)
kill -TERM "${replica_pids[1]}"
exit_status=0
wait "${replica_pids[1]}" || exit_status=$?
stopped=$(date +%s.%N)
start_replica 1
restarted=$(date +%s.%N)
wait "$client"

python3 - "$work/client.json" "$stopping" "$stopped" "$restarted" "$exit_status" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
stopping, stopped, restarted = map(float, sys.argv[2:5])
latency = summary["latency_ms"]
print(f"  requests/s   {summary['requests_per_second']}  ({summary['answered']} answered in {summary['wall_seconds']} s)")
print(f"  latency ms   p50 {latency['p50']}  p90 {latency['p90']}  p99 {latency['p99']}  max {latency['max']}")
print(f"  requests     {summary['requests']}, retries {summary['retries']}, errors {summary['errors']} {summary['error_samples'] or ''}")
print(f"  decisions    {summary['decisions']}")
print(f"  replica 1    drained and exited (status {sys.argv[5]}) in {stopped - stopping:.2f} s, answering again {restarted - stopping:.2f} s after SIGTERM")
print("  answers per second, replica 0 / replica 1:")
print("    " + "  ".join(f"{second}s:{zero}/{one}" for second, zero, one in summary["answers_by_second"]))
print(f"  client CPU   {summary['client_cpu_seconds']} s, {summary['client_cores_used']} of the machine's cores on average")
PY

echo
echo "replicas after the run (replica 1 is the restarted process):"
for index in 0 1; do
  pid=${replica_pids[$index]}
  cpu=$(python3 -c 'import os,sys; f=open(sys.argv[1]).read().rsplit(")",1)[1].split(); print(round((int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK"),1))' "/proc/$pid/stat")
  echo "  replica $index: $(grep -E '^(VmRSS|VmHWM)' "/proc/$pid/status" | tr -s ' \t' ' ' | paste -sd, -), CPU ${cpu} s"
done
curl -fsk "${urls[0]}/metrics" | grep -E '^stowaway_(admission|store_up|scans_total)' | grep -v '_bucket' | sed 's/^/  replica 0 /'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(1 if s["errors"] or sys.argv[2] != "0" else 0)' \
  "$work/client.json" "$exit_status" || {
  echo "admission-ha: some requests failed on both replicas or were decided wrongly, or replica 1 did not exit cleanly" >&2
  exit 1
}
