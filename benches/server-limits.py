#!/usr/bin/env python3
"""The server's bounds under the hostile loads of issue 12 (defect 9), each on a fresh
`stowaway serve` (plain HTTP on 127.0.0.1, --no-auth), with its peak RSS (VmHWM):

  many-images   one AdmissionReview naming 10,000 distinct images on a host that counts the
                requests it gets: the answer's time, the requests the host saw;
  slow-bodies   500 connections that send their headers and 10 bytes of a 1000-byte body:
                how long until the server has answered and closed them all, and what;
  big-bodies    150 connections that each send all but the last byte of an 8 MiB body: how
                many are refused at once (503), and the server's RSS meanwhile.

    python3 benches/server-limits.py [PATH_TO_STOWAWAY] [CASE...]
"""
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

BINARY = "target/release/stowaway"
CASES = ["many-images", "slow-bodies", "big-bodies"]


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, binary, policy):
        self.dir = tempfile.TemporaryDirectory()
        path = os.path.join(self.dir.name, "policy.toml")
        with open(path, "w") as f:
            f.write(policy)
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--no-auth", "--quiet",
             "--config", path, "--cache-dir", os.path.join(self.dir.name, "cache")],
            stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        self.port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def rss(self):
        return peak_rss_mib(self.proc.pid)

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.settimeout(120)
        return sock


def head(sock):
    data = b""
    while b"\r\n" not in data:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data.split(b" ")[1].decode() if data.startswith(b"HTTP/") else "closed"


def post(sock, path, body):
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def many_images(binary):
    seen = []

    class Count(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Count)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    server = Server(binary, 'allowed_registries = ["127.0.0.1:*"]\n')
    target = f"127.0.0.1:{host.server_address[1]}"
    containers = [{"name": f"c{i}", "image": f"{target}/app{i}:1"} for i in range(10_000)]
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "namespace": "shop", "operation": "CREATE",
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": containers}}}}
    body = json.dumps(review).encode()
    started = time.monotonic()
    answer = post(server.connect(), "/admission", body)
    elapsed = time.monotonic() - started
    decision = json.loads(answer.split(b"\r\n\r\n", 1)[1])["response"]
    time.sleep(1)
    print(f"many-images: {len(body) >> 10} KiB review, answered in {elapsed:.3f} s, "
          f"allowed={decision['allowed']}, requests to the named host: {len(seen)}, "
          f"peak RSS {server.rss():.0f} MiB")
    print(f"  message: {decision.get('status', {}).get('message', '')[:160]}")
    server.stop()
    host.shutdown()


def slow_bodies(binary, count=500):
    server = Server(binary, "")
    socks = []
    started = time.monotonic()
    for _ in range(count):
        sock = server.connect()
        sock.sendall(b"POST /admission HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b" " * 10)
        socks.append(sock)
    opened = time.monotonic() - started
    statuses = {}
    for sock in socks:
        status = head(sock)
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        statuses[status] = statuses.get(status, 0) + 1
    elapsed = time.monotonic() - started
    probe = time.monotonic()
    ok = head(_get(server, "/healthz"))
    print(f"slow-bodies: {count} connections opened in {opened:.1f} s, all answered and closed "
          f"{elapsed:.1f} s after the first: {statuses}; /healthz then {ok} in "
          f"{time.monotonic() - probe:.3f} s; peak RSS {server.rss():.0f} MiB")
    server.stop()


def _get(server, path):
    sock = server.connect()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return sock


def big_bodies(binary, count=150, size=8 << 20):
    server = Server(binary, "")
    base = server.rss()
    chunk = b" " * (1 << 20)
    socks, statuses = [], {}
    started = time.monotonic()
    for _ in range(count):
        sock = server.connect()
        sock.sendall(b"POST /admission HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {size}\r\n\r\n".encode())
        sock.setblocking(False)
        sent = 0
        try:
            while sent < size - 1:
                sent += sock.send(chunk[: min(len(chunk), size - 1 - sent)])
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: a refused one, or its buffers are full
        sock.settimeout(120)
        socks.append((sock, sent))
    time.sleep(2)
    holding = server.rss()
    for sock, _ in socks:
        status = head(sock)
        statuses[status] = statuses.get(status, 0) + 1
    delivered = sum(sent for _, sent in socks) >> 20
    print(f"big-bodies: {count} connections sent {delivered} MiB of 8 MiB bodies (all but the "
          f"last byte) in {time.monotonic() - started:.1f} s; answers {statuses}; peak RSS "
          f"{base:.0f} MiB idle, {holding:.0f} MiB while held, {server.rss():.0f} MiB at the end")
    server.stop()


def main():
    args = sys.argv[1:]
    binary = args.pop(0) if args and not args[0] in CASES else BINARY
    for case in args or CASES:
        {"many-images": many_images, "slow-bodies": slow_bodies,
         "big-bodies": big_bodies}[case](binary)


if __name__ == "__main__":
    main()
