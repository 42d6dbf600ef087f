"""The load client of benches/admission-ha.sh: AdmissionReviews to two replicas, as a cluster's
API server sends them through a Service, with the Python standard library only.

Each connection (a thread holding one keep-alive HTTPS connection per replica) sends the
reviews in turn, to the replicas in turn; a connection error, a timeout or a 5xx is retried
once on the other replica, as the API server would reach another endpoint of the Service. A
request is an error when it fails on both replicas or gets a wrong decision (the expected
allowed/denied, the review's uid, and no warning on an allowed image: a warning means it was
not decided from the shared result). The connections are spread over several processes so
that the client is not held to one core by Python's global lock; each process reports its CPU
time, so the summary says how much of the machine the client itself took.

Bounded: DURATION seconds or MAX_REQUESTS requests in all, whichever comes first; only the
URLs given (the script passes 127.0.0.1 ones).

    python3 admission-ha-client.py --url https://127.0.0.1:P1 --url https://127.0.0.1:P2 \\
        --ca tls.crt --review body1.json:deny --review body2.json:allow ... \\
        [--duration 30] [--connections 16] [--processes 2] [--max-requests 3000000]

Prints one JSON object: counts, latency percentiles (of each request as the caller sees it,
retry included), answers per replica per second, the client's CPU seconds.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import ssl
import threading
import time
import urllib.parse

TIMEOUT_SECONDS = 10


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--review", action="append", required=True, help="FILE:allow|deny")
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--max-requests", type=int, default=3_000_000)
    args = parser.parse_args()
    if len(args.url) != 2:
        parser.error("give two --url, one per replica")
    for url in args.url:
        if urllib.parse.urlsplit(url).hostname != "127.0.0.1":
            parser.error(f"{url}: this client only talks to 127.0.0.1")
    return args


def load_reviews(specs):
    reviews = []
    for spec in specs:
        path, _, decision = spec.rpartition(":")
        body = open(path, "rb").read()
        uid = json.loads(body)["request"]["uid"]
        reviews.append((body, decision == "allow", uid))
    return reviews


class Replica:
    """One keep-alive HTTPS connection to one replica, opened again after a failure."""

    def __init__(self, url, context):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.context = parts.hostname, parts.port, context
        self.connection = None

    def post(self, body):
        """Returns (status, body bytes); raises on a connection error or timeout."""
        if self.connection is None:
            self.connection = http.client.HTTPSConnection(
                self.host, self.port, context=self.context, timeout=TIMEOUT_SECONDS)
        try:
            self.connection.request("POST", "/admission", body, {"Content-Type": "application/json"})
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, data

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def judge(status, data, allowed, uid):
    """None when the answer is right, else what is wrong with it."""
    if status != 200:
        return f"HTTP {status}"
    try:
        response = json.loads(data)["response"]
    except (ValueError, KeyError, TypeError):
        return "not an AdmissionReview"
    if response.get("uid") != uid:
        return "wrong uid"
    if response.get("allowed") is not allowed:
        return f"allowed={response.get('allowed')}, expected {allowed}"
    if allowed and response.get("warnings"):
        return "allowed with a warning (not decided from the shared result)"
    return None


def connection_loop(index, args, reviews, start, budget, lock, out):
    context = ssl.create_default_context(cafile=args.ca)
    replicas = [Replica(url, context) for url in args.url]
    deadline = start + args.duration
    turn = index
    while time.monotonic() < deadline:
        with lock:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        body, allowed, uid = reviews[turn % len(reviews)]
        first = turn % 2
        began = time.monotonic()
        outcome = None
        for attempt in (0, 1):
            replica = (first + attempt) % 2
            if attempt:
                out["retries"] += 1
            try:
                status, data = replicas[replica].post(body)
            except (OSError, http.client.HTTPException) as err:
                outcome = ("failed", replica, type(err).__name__)
                continue
            if status >= 500:
                outcome = ("failed", replica, f"HTTP {status}")
                continue
            wrong = judge(status, data, allowed, uid)
            outcome = ("wrong", replica, wrong) if wrong else ("ok", replica, "denied" if not allowed else "allowed")
            break
        ended = time.monotonic()
        kind, replica, detail = outcome
        if kind == "ok":
            out["latencies"].append(ended - began)
            out["decisions"][detail] = out["decisions"].get(detail, 0) + 1
            second = str(int(ended - start))
            per = out["answers_by_second"].setdefault(second, [0, 0])
            per[replica] += 1
        else:
            out["errors"] += 1
            if len(out["error_samples"]) < 5:
                out["error_samples"].append(f"{kind} on replica {replica}: {detail}")
        turn += 1
    for replica in replicas:
        replica.close()


def process_main(process, threads, args, start, budget_per_process, results):
    reviews = load_reviews(args.review)
    lock = threading.Lock()
    budget = [budget_per_process]
    outs = []
    workers = []
    for thread in range(threads):
        out = {"latencies": [], "decisions": {}, "answers_by_second": {}, "errors": 0,
               "error_samples": [], "retries": 0}
        outs.append(out)
        index = process * threads + thread
        workers.append(threading.Thread(
            target=connection_loop, args=(index, args, reviews, start, budget, lock, out)))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    times = os.times()
    results.put({"outs": outs, "cpu_seconds": times.user + times.system})


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def merge(parts, wall):
    latencies, decisions, by_second = [], {}, {}
    errors = retries = 0
    samples = []
    cpu = 0.0
    for part in parts:
        cpu += part["cpu_seconds"]
        for out in part["outs"]:
            latencies.extend(out["latencies"])
            errors += out["errors"]
            retries += out["retries"]
            samples.extend(out["error_samples"])
            for decision, count in out["decisions"].items():
                decisions[decision] = decisions.get(decision, 0) + count
            for second, counts in out["answers_by_second"].items():
                total = by_second.setdefault(int(second), [0, 0])
                total[0] += counts[0]
                total[1] += counts[1]
    latencies.sort()
    answered = len(latencies)
    return {
        "wall_seconds": round(wall, 2),
        "requests": answered + errors,
        "answered": answered,
        "errors": errors,
        "error_samples": samples[:5],
        "retries": retries,
        "requests_per_second": round(answered / wall, 1) if wall else None,
        "latency_ms": {name: round(percentile(latencies, q) * 1000, 2) if latencies else None
                       for name, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0))},
        "decisions": decisions,
        "answers_by_second": [[second, *by_second[second]] for second in sorted(by_second)],
        "client_cpu_seconds": round(cpu, 2),
        "client_cores_used": round(cpu / wall, 2) if wall else None,
    }


def main():
    args = parse_args()
    processes = max(1, min(args.processes, args.connections))
    threads = max(1, args.connections // processes)
    results = multiprocessing.Queue()
    start = time.monotonic()
    children = [multiprocessing.Process(
        target=process_main,
        args=(p, threads, args, start, args.max_requests // processes, results))
        for p in range(processes)]
    for child in children:
        child.start()
    parts = [results.get() for _ in children]
    wall = time.monotonic() - start
    for child in children:
        child.join()
    print(json.dumps(merge(parts, wall)))


if __name__ == "__main__":
    main()
