"""A bounded load generator for ``mas-kg serve``, shared by tests/test_server_load.py and bench/server_load.py.

N client threads (one ``httpx.Client`` each, keep-alive) send a fixed total of
requests drawn from a realistic mix: ``GET /health``, named queries (GET),
SPARQL SELECTs (GET and POST, form and ``application/sparql-query``) and
``POST /explain`` with an example patient.  It stops by itself when the
requests are used up.  Every response is checked against the status it must
have; anything else (another status, a connection error) is an error.

>>> percentile([3.0, 1.0, 2.0, 4.0], 50), percentile([1.0], 99)
(2.0, 1.0)
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "patients"
MKR = "PREFIX mkr: <https://w3id.org/mas-kg/report/>\n"
SELECT = MKR + 'SELECT ?s WHERE { ?v mkr:code "mas2016" ; mkr:status ?s ; mkr:patient/mkr:patientId "ex-sjia-mas" }'
#: small named queries (a few rows each) and their parameters, for a patient the server loaded (sjia-mas)
NAMED = {"why-abnormal": {"patient": "ex-sjia-mas", "lab": "ferritin"}, "patient-criteria": {"patient": "ex-sjia-mas"},
         "upstream-mechanisms": {"finding": "ferritin"}, "criteria-using-analyte": {"analyte": "fibrinogen"}}
COUNT = MKR + "SELECT (COUNT(?v) AS ?n) WHERE { ?v mkr:code ?c }"


@dataclass
class Request:
    """One kind of request in the mix: a name, how often it is drawn, how to send it and the status it must get."""

    name: str
    weight: int
    send: Callable[[httpx.Client], httpx.Response]
    status: int = 200


@dataclass
class LoadResult:
    """Latencies (seconds) per request kind, errors (one line each), wall time."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0

    @property
    def all(self) -> list[float]:
        return [t for times in self.latencies.values() for t in times]

    def summary(self) -> dict[str, float]:
        times = self.all
        return {"requests": len(times) + len(self.errors), "errors": len(self.errors),
                "p50_ms": 1000 * percentile(times, 50), "p95_ms": 1000 * percentile(times, 95),
                "p99_ms": 1000 * percentile(times, 99), "max_ms": 1000 * max(times, default=0.0),
                "requests_per_s": (len(times) + len(self.errors)) / self.wall if self.wall else 0.0}

    def table(self) -> str:
        lines = [f"{'kind':<18}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}"]
        for name, times in sorted(self.latencies.items()):
            lines.append(f"{name:<18}{len(times):>6}{1000 * percentile(times, 50):>10.1f}"
                         f"{1000 * percentile(times, 95):>10.1f}{1000 * percentile(times, 99):>10.1f}")
        s = self.summary()
        lines.append(f"{'all':<18}{s['requests']:>6.0f}{s['p50_ms']:>10.1f}{s['p95_ms']:>10.1f}{s['p99_ms']:>10.1f}")
        lines.append(f"{s['requests_per_s']:.0f} requests/s over {self.wall:.1f} s; {s['errors']:.0f} errors")
        return "\n".join(lines)


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def mix(base: str, *, explain: bool = True) -> list[Request]:
    """The request mix: the small named queries the server lists, SELECTs, a refused update, an example patient."""
    with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
        listed = {q["name"] for q in client.get("/queries").json()}
    named = [(name, params) for name, params in NAMED.items() if name in listed]
    patient = (EXAMPLES / "sjia-mas.json").read_bytes()
    requests = [
        Request("health", 4, lambda c: c.get("/health")),
        Request("sparql-get", 4, lambda c: c.get("/sparql", params={"query": SELECT})),
        Request("sparql-form", 3, lambda c: c.post("/sparql", data={"query": COUNT})),
        Request("sparql-query", 2, lambda c: c.post("/sparql", content=SELECT.encode(),
                                                    headers={"Content-Type": "application/sparql-query"})),
        Request("refused-update", 1, lambda c: c.post("/sparql", data={"update": "CLEAR ALL"}), 403),
    ]
    for name, params in named:
        requests.append(Request(name[:17], 2,
                                lambda c, name=name, params=params: c.get(f"/queries/{name}", params=params)))
    if explain:
        requests.append(Request("explain", 1, lambda c: c.post(
            "/explain", content=patient, headers={"Content-Type": "application/json"})))
    return requests


def run_load(base: str, *, clients: int = 50, requests: int = 3000, explain: bool = True,
             on_progress: Callable[[int], None] | None = None) -> LoadResult:
    """Send ``requests`` requests from ``clients`` threads at once; return latencies and errors.

    The mix is drawn in a fixed round-robin order (weights repeat a kind), so two runs send the same requests.
    ``on_progress`` is called (from a client thread) with the number of requests done, every 100 requests.
    """
    kinds = mix(base, explain=explain)
    schedule = [k for k in kinds for _ in range(k.weight)]
    counter = itertools.count()
    lock = threading.Lock()
    result = LoadResult(latencies={k.name: [] for k in kinds})
    start = threading.Barrier(clients)

    def client_loop() -> None:
        with httpx.Client(base_url=base, timeout=60, trust_env=False,
                          limits=httpx.Limits(max_connections=1)) as client:
            start.wait()  # all clients begin together: 50 really concurrent connections
            while (n := next(counter)) < requests:
                kind = schedule[n % len(schedule)]
                began = time.perf_counter()
                try:
                    response = kind.send(client)
                    took = time.perf_counter() - began
                    problem = None if response.status_code == kind.status else \
                        f"{kind.name}: {response.status_code} {response.text[:200]!r}"
                except httpx.HTTPError as error:
                    took, problem = time.perf_counter() - began, f"{kind.name}: {type(error).__name__}: {error}"
                with lock:
                    if problem:
                        result.errors.append(problem)
                    else:
                        result.latencies[kind.name].append(took)
                if on_progress and n % 100 == 0:
                    on_progress(n)

    threads = [threading.Thread(target=client_loop, name=f"load-{i}", daemon=True) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall = time.perf_counter() - began
    return result


def rss_kib(pids: Any) -> int:
    """The summed resident set size (VmRSS, KiB) of these processes (Linux /proc); a gone process counts 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as handle:
                total += next((int(line.split()[1]) for line in handle if line.startswith("VmRSS:")), 0)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total
