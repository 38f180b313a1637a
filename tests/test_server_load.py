"""``mas-kg serve`` under a bounded load on loopback: 50 concurrent clients, a few thousand requests, then it stops.

Asserts no errors (every response has its expected status, no connection error), a stable memory (RSS of the
server and its query workers after a warm-up vs at the end) and a clean shutdown.  Latency is reported
(p50/p95/p99 printed and recorded with ``record_property``), never asserted: timings vary with the machine.
"""

from __future__ import annotations

import pytest

from load_support import rss_kib, run_load
from test_server import SERVER_ARGS, children, start_server, stop_server

pytestmark = pytest.mark.slow

CLIENTS = 50
WARM_UP = 1000  # RSS climbs during the first ~1000 requests (thread stacks, caches), then plateaus
REQUESTS = 3000
# Growth allowed between the warm-up and the end.  After the warm-up every code path (each query kind, the
# engine's caches for /explain, 50 handler threads and their buffers) has been exercised once, so what remains is
# allocator noise: a few MB.  A leak of even 10 KiB per request would add ~30 MB over 3000 requests; the bound sits
# under that yet well above the noise: 25 MB or 15 % of the warm RSS, whichever is larger.
GROWTH_MB, GROWTH_FRACTION = 25, 0.15


def test_bounded_load_has_no_errors_and_stable_memory(record_property, capsys):
    process, url, stderr = start_server(SERVER_ARGS)
    base = url[: -len("/sparql")]
    try:
        warm = run_load(base, clients=CLIENTS, requests=WARM_UP)
        assert warm.errors == [], warm.errors[:5]
        pids = {process.pid} | children(process.pid)
        before = rss_kib(pids)
        result = run_load(base, clients=CLIENTS, requests=REQUESTS)
        after_pids = {process.pid} | children(process.pid)
        after = rss_kib(after_pids)
    finally:
        stop_server(process, stderr)  # also asserts: exit 0, no traceback logged, no worker left behind
    summary = result.summary()
    for key, value in summary.items():
        record_property(key, round(value, 2))
    record_property("rss_mb_warm", round(before / 1024, 1))
    record_property("rss_mb_end", round(after / 1024, 1))
    with capsys.disabled():
        print(f"\n{CLIENTS} clients, {REQUESTS} requests after a {WARM_UP}-request warm-up:\n{result.table()}\n"
              f"RSS server + workers: {before / 1024:.1f} MB warm, {after / 1024:.1f} MB at the end")
    assert result.errors == [], f"{len(result.errors)} errors, e.g. {result.errors[:5]}"
    assert summary["requests"] == REQUESTS and len(result.all) == REQUESTS
    assert all(result.latencies.values()), "every kind in the mix was sent"
    assert after_pids == pids, "no query worker was replaced (none died or timed out)"
    growth = after - before
    assert growth < max(GROWTH_MB * 1024, GROWTH_FRACTION * before), \
        f"RSS grew by {growth / 1024:.1f} MB ({before / 1024:.1f} -> {after / 1024:.1f} MB)"
