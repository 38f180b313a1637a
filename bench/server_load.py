"""Load ``mas-kg serve`` on loopback: N concurrent clients, a fixed number of requests; print latency and rate.

    python bench/server_load.py [--clients 50] [--requests 5000] [--rounds 1] [--url http://127.0.0.1:8000]

Without ``--url`` a server is started (``mas-kg serve --port 0`` with two
example patients) and stopped afterwards; its RSS (and its query workers') is
printed after a warm-up and after each round.  The request mix and the client
code are tests/load_support.py's, the same the load test runs.  For release-time
runs: the numbers are this machine's, not a contract.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from load_support import rss_kib, run_load  # noqa: E402

ARGS = ["serve", "--port", "0", "--patient", "examples/patients/sjia-mas.json",
        "--patient", "examples/patients/sjia-flare.json"]


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        found.update(int(word) for word in path.read_text().split())
    return found


def start() -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen([sys.executable, "-m", "kg.cli", *ARGS], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if not line.startswith("mas-kg: serving http://"):
        process.kill()
        sys.exit(f"the server did not start: {line!r}")
    return process, line.split()[2][: -len("/sparql")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=1, help="rounds after the warm-up (watch RSS across them)")
    parser.add_argument("--warm-up", type=int, default=500)
    parser.add_argument("--no-explain", action="store_true", help="leave POST /explain out of the mix")
    parser.add_argument("--url", help="an already running server's base URL (no RSS then)")
    args = parser.parse_args()
    process, base = (None, args.url.rstrip("/")) if args.url else start()

    def rss() -> str:
        if process is None:
            return ""
        pids = {process.pid} | children(process.pid)
        return f"RSS {rss_kib(pids) / 1024:.1f} MB ({len(pids)} processes)"

    try:
        if args.warm_up:
            warm = run_load(base, clients=args.clients, requests=args.warm_up, explain=not args.no_explain)
            print(f"warm-up: {args.warm_up} requests, {len(warm.errors)} errors; {rss()}")
        for n in range(args.rounds):
            began = time.perf_counter()
            result = run_load(base, clients=args.clients, requests=args.requests, explain=not args.no_explain)
            print(f"\nround {n + 1}: {args.clients} clients, {args.requests} requests "
                  f"({time.perf_counter() - began:.1f} s); {rss()}\n{result.table()}")
            for error in result.errors[:10]:
                print("  error:", error)
    finally:
        if process is not None:
            process.terminate()
            process.wait(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
