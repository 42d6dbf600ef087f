# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034  # work, pids and bench come from the caller; the digests go to it
# Shared by benches/admission-load.sh and benches/admission-ha.sh (sourced, not run): the
# helpers, the registry with the two images, and the AdmissionReviews both send. Expects
# `work` (a temporary directory), `pids` (an array the caller's cleanup kills) and `bench`
# (the script's name, for messages) to be set.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # url, what
  for _ in $(seq 100); do curl -fsk "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$bench: $2 did not come up at $1" >&2; exit 1
}

# Starts Debian's docker-registry on a free port and pushes two images with skopeo: the demo
# image with its leaked secrets (testdata/demo-leaky.tar) and a clean one made by umoci.
# Sets `registry` (HOST:PORT), `leaky_digest` and `clean_digest`.
start_registry_with_images() {
  local registry_port
  registry_port=$(free_port)
  mkdir -p "$work/registry"
  cat >"$work/registry/config.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry/data}}
http: {addr: 127.0.0.1:$registry_port}
YML
  docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
  pids+=($!)
  wait_for "http://127.0.0.1:$registry_port/v2/" "docker-registry"
  registry="127.0.0.1:$registry_port"

  skopeo copy --quiet --dest-tls-verify=false docker-archive:testdata/demo-leaky.tar "docker://$registry/demo/leaky:1"
  (cd "$work" && umoci init --layout clean && umoci new --image clean:1 \
    && umoci config --image clean:1 --config.cmd /bin/true --author stowaway-bench) >/dev/null
  skopeo copy --quiet --dest-tls-verify=false "oci:$work/clean:1" "docker://$registry/demo/clean:1"
  leaky_digest=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$registry/demo/leaky:1")
  clean_digest=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$registry/demo/clean:1")
}

# Writes the three AdmissionReviews to $work/body{1,2,3}.json: a Pod with the leaky image by
# tag (denied), a Deployment with the clean image by tag (allowed), a Pod with the leaky
# image pinned by digest (denied).
write_reviews() {
  review() { # uid, kind, object
    printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"%s","kind":{"group":"","version":"v1","kind":"%s"},"namespace":"shop","operation":"CREATE","object":%s}}' "$1" "$2" "$3"
  }
  pod() { printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"shop"},"spec":{"containers":[{"name":"web","image":"%s"}]}}' "$1"; }
  deployment() { printf '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"%s"}]}}}}' "$1"; }
  review leaky-tag Pod "$(pod "$registry/demo/leaky:1")" >"$work/body1.json"
  review clean-deployment Deployment "$(deployment "$registry/demo/clean:1")" >"$work/body2.json"
  review leaky-digest Pod "$(pod "$registry/demo/leaky@$leaky_digest")" >"$work/body3.json"
}

# Asks SCAN_URL (a server's base URL) to scan both images, then waits until REPORTS_URL (the
# same server or another sharing its store) has both reports.
scan_both_images() { # scan_url, reports_url
  local image digest
  for image in demo/leaky:1 demo/clean:1; do
    curl -fsk -X POST -H 'Content-Type: application/json' -d "{\"image\": \"$registry/$image\"}" "$1/scan" >/dev/null
  done
  for digest in "$leaky_digest" "$clean_digest"; do
    for _ in $(seq 300); do curl -fsk "$2/reports/$digest" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsk "$2/reports/$digest" >/dev/null || { echo "$bench: no report for $digest" >&2; exit 1; }
  done
}
