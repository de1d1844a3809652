#!/usr/bin/env python3
"""Steady mixed load through the balancer, counting exactly what clients see.

Each client thread owns one user and one keep-alive connection and loops:
POST /food (a write), GET /food (its day), GET /profile. Nothing is retried:
a refused or reset connection or a non-2xx answer is a failure, counted by
method and cause. When time is up every client reads its day back and checks
that each food entry it got a 201 for is there (acknowledged writes lost) and
that nothing is there twice.

usage: cluster_load.py URL [--clients 16] [--seconds 30] [--key dev-local-key]
prints one JSON line: requests, failures by method/cause, writes acked, lost.
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--key", default="dev-local-key")
    ap.add_argument("--stop-file", help="stop early once this file exists")
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    host, port = u.hostname, u.port or 80
    run = uuid.uuid4().hex[:8]
    lock = threading.Lock()
    ok, fail = Counter(), Counter()
    acked = {}  # user -> list of food descriptions acknowledged
    headers = {"X-API-Key": a.key, "Content-Type": "application/json"}
    deadline = time.monotonic() + a.seconds

    def request(conn, method, path, body=None):
        """(status, body) or (None, cause); reconnects after a failure."""
        try:
            conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
            r = conn.getresponse()
            data = r.read()
            if r.getheader("connection", "").lower() == "close":
                conn.close()
            return r.status, data
        except Exception as e:  # noqa: BLE001 - every transport error counts
            conn.close()
            return None, type(e).__name__

    def client(i):
        user = f"load-{run}-{i}"
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine = []
        status, _ = request(conn, "POST", "/api/v1/users", {"user_id": user})
        n = 0
        while time.monotonic() < deadline:
            if a.stop_file and n % 20 == 0:
                try:
                    open(a.stop_file).close()
                    break
                except OSError:
                    pass
            n += 1
            desc = f"apple {n}"
            for method, path, body in (
                ("POST", f"/api/v1/users/{user}/food", {"description": desc, "calories": 95}),
                ("GET", f"/api/v1/users/{user}/food", None),
                ("GET", f"/api/v1/users/{user}/profile", None),
            ):
                status, data = request(conn, method, path, body)
                with lock:
                    if status is not None and 200 <= status < 300:
                        ok[method] += 1
                        if method == "POST":
                            mine.append(desc)
                    else:
                        fail[f"{method} {status if status is not None else data}"] += 1
        with lock:
            acked[user] = mine
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started

    # Every acknowledged write must be stored, once.
    lost = duplicated = 0
    conn = http.client.HTTPConnection(host, port, timeout=30)
    for user, descs in acked.items():
        status, data = request(conn, "GET", f"/api/v1/users/{user}/food")
        if status != 200:
            lost += len(descs)
            continue
        stored = Counter(e.get("description") for e in json.loads(data).get("entries", []))
        lost += sum(1 for d in descs if stored[d] == 0)
        duplicated += sum(c - 1 for c in stored.values() if c > 1)
    out = {
        "seconds": round(took, 1),
        "requests": sum(ok.values()) + sum(fail.values()),
        "ok": dict(ok),
        "failures": dict(fail),
        "failed_idempotent": sum(v for k, v in fail.items() if k.startswith("GET")),
        "failed_writes": sum(v for k, v in fail.items() if k.startswith("POST")),
        "writes_acked": sum(len(v) for v in acked.values()),
        "acked_writes_lost": lost,
        "duplicated": duplicated,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
