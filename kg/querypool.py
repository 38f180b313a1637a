"""A pool of query worker processes, so that a query's time limit is really enforced.

Oxigraph evaluates a query in Rust with the GIL released and has no timeout
and no cancellation: a thread running a runaway query (a cross product, an
unbounded property path) cannot be stopped, and keeps a core busy for ever.
A *process* can be stopped.  So the server runs queries in N worker
processes, each holding its own read-only copy of the store, loaded from an
N-Quads dump written once to a private temporary file.  When a query passes
its time limit the worker running it is killed (SIGKILL) and a replacement
is started in the background; it takes requests again once it has loaded the
dump.  Workers are started with the ``spawn`` method: the server is
multi-threaded, and forking a multi-threaded process is unsafe.

>>> pool = QueryPool("<urn:a> <urn:b> <urn:c> .\\n", workers=1, timeout=30)  # doctest: +SKIP
>>> pool.start(); pool.query("ASK { ?s ?p ?o }").boolean; pool.close()  # doctest: +SKIP
True
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from typing import Any, Mapping

from rdflib.term import Identifier

from . import errors
from .errors import QueryError, QueryTimeout, QueryUnavailable
from .sparql import MAX_QUERY_LENGTH, check_query
from .store import QueryResult

__all__ = ["QueryPool", "START_TIMEOUT"]

#: Seconds a worker may take to start and load the dump.
START_TIMEOUT = 120.0
# The errors a worker may report, by name: every InputError subclass kg.errors declares.
_ERRORS = {name: value for name, value in vars(errors).items()
           if isinstance(value, type) and issubclass(value, errors.InputError)}


def _serve(conn: Connection, path: str, max_length: int) -> None:
    """A worker's life: load the dump, say ``ready``, then answer requests until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent decides
    try:
        from .store import OxigraphStore

        store = OxigraphStore()
        with open(path, encoding="utf-8") as handle:
            store.add_nquads(handle.read())
    except Exception as error:
        conn.send(("failed", type(error).__name__, " ".join(str(error).split())[:300]))
        return
    conn.send(("ready",))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        text, bindings, max_rows = request
        try:
            result = store.query(text, bindings=bindings, max_rows=max_rows, max_length=max_length)
            answer: tuple[Any, ...] = ("ok", result)
        except QueryError as error:
            name = type(error).__name__
            answer = ("error", name if name in _ERRORS else "QueryError", str(error))
        except Exception as error:  # anything else the store raises is still the query's fault
            answer = ("error", "QueryError", f"the query failed: {' '.join(str(error).split())[:300]}")
        conn.send(answer)


class _Worker:
    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn

    def stop(self, *, kill: bool) -> None:
        """Ask the worker to stop (or kill it), and reap it."""
        if not kill:
            try:
                self.conn.send(None)
            except (OSError, ValueError):
                kill = True
        if not kill:
            self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class QueryPool:
    """N worker processes answering read-only SPARQL queries over one N-Quads dump; thread-safe."""

    def __init__(self, dump: str, *, workers: int = 2, timeout: float = 10.0, max_rows: int | None = None,
                 max_query_length: int = MAX_QUERY_LENGTH) -> None:
        if workers < 1 or not timeout > 0:
            raise ValueError("a pool needs at least one worker and a positive time limit")
        self.size, self.timeout, self.max_rows, self.max_query_length = workers, timeout, max_rows, max_query_length
        self._context = multiprocessing.get_context("spawn")
        fd, self._path = tempfile.mkstemp(prefix="mas-kg-", suffix=".nq")  # mode 0600: private to this user
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dump)
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False

    # -- workers
    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child, self._path, self.max_query_length),
                                        name="mas-kg-query", daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def _await_ready(self, worker: _Worker) -> None:
        try:
            if not worker.conn.poll(START_TIMEOUT):
                raise QueryError(f"a query worker did not start within {START_TIMEOUT:g} s")
            message = worker.conn.recv()
        except (EOFError, OSError):
            message = ("failed", "EOFError", "the process ended")
        if message[0] != "ready":
            worker.stop(kill=True)
            raise QueryError(f"a query worker could not load the store: {message[1]}: {message[2]}")

    def _add(self, worker: _Worker) -> None:
        with self._cond:
            if self._closed:
                worker.stop(kill=True)
                return
            self._idle.append(worker)
            self._cond.notify()

    def _replace(self) -> None:
        """Start a replacement worker in the background (a few attempts)."""
        def work() -> None:
            for attempt in range(3):
                if self._closed:
                    return
                try:
                    worker = self._spawn()
                    self._await_ready(worker)
                except Exception as error:
                    sys.stderr.write(f"mas-kg: warning: replacing a query worker: {error}\n")
                    time.sleep(1 + attempt)
                    continue
                self._add(worker)
                return

        threading.Thread(target=work, name="mas-kg-replace", daemon=True).start()

    def start(self) -> "QueryPool":
        """Start every worker; return once all have loaded the store."""
        started = [self._spawn() for _ in range(self.size)]
        try:
            for worker in started:
                self._await_ready(worker)
        except BaseException:
            for worker in started:
                if worker.process.is_alive():
                    worker.stop(kill=True)
            raise
        for worker in started:
            self._add(worker)
        return self

    def idle(self) -> int:
        """How many workers are ready for a query now."""
        with self._cond:
            return len(self._idle)

    # -- queries
    def query(self, text: str, *, bindings: Mapping[str, Identifier] | None = None,
              max_rows: int | None = None) -> QueryResult:
        """Run a query in a worker; past the time limit the worker is killed and :class:`QueryTimeout` raised.

        Errors raised in the worker come back with their class and message.
        """
        check_query(text, max_length=self.max_query_length)
        with self._cond:
            if not self._cond.wait_for(lambda: self._idle or self._closed, timeout=self.timeout):
                raise QueryTimeout("all query workers are busy; try again later")
            if self._closed:
                raise QueryUnavailable("the query service is shutting down")
            worker = self._idle.pop()
            self._busy.add(worker)
        request = (text, dict(bindings or {}), self.max_rows if max_rows is None else max_rows)
        try:
            worker.conn.send(request)
            ready = worker.conn.poll(self.timeout)
            answer = worker.conn.recv() if ready else None
        except (EOFError, OSError, ValueError):
            self._retire(worker)
            raise QueryUnavailable("the query worker stopped unexpectedly; try again") from None
        if answer is None:
            self._retire(worker)
            raise QueryTimeout(f"the query ran past the time limit of {self.timeout:g} s and was stopped")
        with self._cond:
            self._busy.discard(worker)
            if self._closed:
                worker.stop(kill=True)
            else:
                self._idle.append(worker)
                self._cond.notify()
        if answer[0] == "ok":
            return answer[1]
        raise _ERRORS.get(answer[1], QueryError)(answer[2])

    def _retire(self, worker: _Worker) -> None:
        """Kill a worker that timed out or died, and start its replacement."""
        with self._cond:
            self._busy.discard(worker)
            closed = self._closed
        worker.stop(kill=True)
        if not closed:
            self._replace()

    def close(self) -> None:
        """Stop every worker and delete the dump file."""
        with self._cond:
            self._closed = True
            idle, busy = list(self._idle), list(self._busy)
            self._idle.clear()
            self._cond.notify_all()
        for worker in busy:
            worker.process.kill()  # the thread waiting on it sees the pipe close and reaps it
        for worker in idle:
            worker.stop(kill=False)
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "QueryPool":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
