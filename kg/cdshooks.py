r"""A CDS Hooks service in ``mas-kg serve``: discovery, the ``patient-view`` service, feedback and views.

Endpoints (``{id}`` is :data:`SERVICE_ID`, ``mas-kg-patient-view``):

* ``GET /cds-services``: the discovery document (:func:`discovery`), one
  service on the ``patient-view`` hook with four prefetch templates;
* ``POST /cds-services/{id}``: a hook call.  The request is checked
  (:func:`parse_request`: ``hook`` must be ``patient-view``, ``hookInstance``
  and ``context.patientId`` non-empty strings, ``fhirServer`` given whenever
  ``fhirAuthorization`` is); the prefetched FHIR resources become a patient
  (:mod:`kg.fhir`), the engine explains it, and the answer is
  ``{"cards": [...]}`` (:mod:`kg.cds_cards` says when a card is warranted);
* ``POST /cds-services/{id}/feedback``: the client says a card was
  ``accepted`` or ``overridden``; each item is checked and logged
  (:class:`FeedbackLog`);
* ``GET /cds-services/{id}/views/{uuid}``: the causal-graph page of one
  call's report, linked from its card.  It is a capability URL: the random
  uuid is the only credential (a clinician's browser opens it, without the
  client's JWT), held in memory for ``--cds-view-ttl`` seconds (default one
  hour) and for at most :data:`VIEWS_KEPT` reports; after that it is 404.

Prefetch.  The service never queries ``fhirServer`` itself.  The keys
``patient``, ``observations`` and ``conditions`` are required: a request
without one of them (or whose value is an OperationOutcome, or a Bundle with
a ``next`` page) gets 412 Precondition Failed, as the spec prescribes when a
service cannot obtain the data it needs.  ``medications`` is optional (the
card says when it was not prefetched).  A ``null`` value is the spec's "no
data" and is read as an empty result; a ``null`` patient is 412 too (no
Patient to evaluate), as is a prefetch holding no Patient whose id is
``context.patientId``.

>>> [s["id"] for s in discovery()["services"]], discovery()["services"][0]["hook"]
(['mas-kg-patient-view'], 'patient-view')
>>> parse_request({"hook": "order-sign", "hookInstance": "1", "context": {}})
Traceback (most recent call last):
...
kg.cdshooks.CdsError: hook 'order-sign' is not served here; this service answers 'patient-view'
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from .cds_cards import main_card
from .errors import InputError

__all__ = ["SERVICE_ID", "HOOK", "PREFETCH", "REQUIRED_PREFETCH", "VIEWS_KEPT", "CdsError", "HookRequest",
           "CdsHooks", "ViewStore", "FeedbackLog", "discovery", "parse_request", "prefetch_resources",
           "parse_feedback"]

SERVICE_ID = "mas-kg-patient-view"
HOOK = "patient-view"
PREFETCH = {"patient": "Patient/{{context.patientId}}",
            "observations": "Observation?patient={{context.patientId}}",
            "conditions": "Condition?patient={{context.patientId}}",
            "medications": "MedicationRequest?patient={{context.patientId}}"}
REQUIRED_PREFETCH = ("patient", "observations", "conditions")
VIEWS_KEPT = 256
_VIEW_BYTES = 64 * 1024 * 1024  # compressed reports held for views, at most
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


class CdsError(Exception):
    """A refused CDS Hooks call: HTTP status, one-line message, extra headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


def discovery() -> dict[str, Any]:
    """The discovery document (``GET /cds-services``)."""
    return {"services": [{
        "hook": HOOK, "id": SERVICE_ID, "title": "mas-kg: MAS/HLH criteria and causal explanations",
        "description": "When a chart is opened, evaluates the patient's labs, signs and conditions against the "
                       "MAS/HLH criteria and scores (HLH-2004, 2016 EULAR/ACR/PRINTO, HScore and others), ranks "
                       "the candidate syndromes and explains each abnormal lab by a sourced causal chain. "
                       "Needs the patient, observations and conditions prefetched (medications optional); "
                       "it never calls the FHIR server. Observations: LOINC codings, UCUM quantities.",
        "prefetch": dict(PREFETCH)}]}


@dataclass(frozen=True)
class HookRequest:
    """A checked ``patient-view`` call."""

    hook_instance: str
    patient_id: str
    prefetch: Mapping[str, Any]


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CdsError(400, f"{what} must be a non-empty string")
    if len(value) > 1000:
        raise CdsError(400, f"{what} is longer than 1000 characters")
    return value


def parse_request(data: Any) -> HookRequest:
    """Check a hook call's JSON body (the spec's request fields); :class:`CdsError` 400 if malformed."""
    if not isinstance(data, dict):
        raise CdsError(400, "the request must be a JSON object with hook, hookInstance and context")
    hook = _string(data.get("hook"), "hook")
    if hook != HOOK:
        raise CdsError(400, f"hook {hook[:60]!r} is not served here; this service answers {HOOK!r}")
    instance = _string(data.get("hookInstance"), "hookInstance")
    if "fhirServer" in data:
        _string(data["fhirServer"], "fhirServer")
    if "fhirAuthorization" in data:
        if not isinstance(data["fhirAuthorization"], dict):
            raise CdsError(400, "fhirAuthorization must be an object")
        if "fhirServer" not in data:
            raise CdsError(400, "fhirAuthorization is given without fhirServer")
    context = data.get("context")
    if not isinstance(context, dict):
        raise CdsError(400, "context must be an object holding patientId")
    patient_id = _string(context.get("patientId"), "context.patientId")
    prefetch = data.get("prefetch", {})
    if not isinstance(prefetch, dict):
        raise CdsError(400, "prefetch must be an object")
    return HookRequest(instance, patient_id, prefetch)


def prefetch_resources(request: HookRequest) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """The prefetched resources as ``(location, resource)`` pairs, and notes for the card.

    :class:`CdsError` 412 when a required key is missing or unusable, 400 when a value is not FHIR JSON.
    """
    missing = [key for key in REQUIRED_PREFETCH if key not in request.prefetch]
    if missing:
        raise CdsError(412, f"prefetch {', '.join(missing)} missing: this service does not query fhirServer; "
                            f"prefetch {', '.join(PREFETCH[k] for k in missing)} (see GET /cds-services)")
    if request.prefetch.get("patient") is None:
        raise CdsError(412, f"prefetch patient is null: the CDS client has no Patient/{request.patient_id[:100]}")
    pairs: list[tuple[str, dict[str, Any]]] = []
    notes = [] if "medications" in request.prefetch else \
        ["medications were not prefetched: therapies the patient is on are unknown"]
    for key in PREFETCH:
        value = request.prefetch.get(key)
        if value is None:
            continue
        where = f"prefetch.{key}"
        if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            raise CdsError(400, f"{where} is not a FHIR resource (a JSON object with resourceType)")
        if value["resourceType"] == "OperationOutcome":
            raise CdsError(412, f"{where} is an OperationOutcome: the CDS client could not prefetch it")
        if value["resourceType"] != "Bundle":
            pairs.append((where, value))
            continue
        links = value.get("link") or []
        if any(isinstance(link, dict) and link.get("relation") == "next" for link in links):
            raise CdsError(412, f"{where} is one page of a search (it links a next page); prefetch must hold "
                                "all results")
        entries = value.get("entry") or []
        if not isinstance(entries, list):
            raise CdsError(400, f"{where}.entry must be an array")
        for index, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                raise CdsError(400, f"{where}.entry[{index}] has no resource")
            if resource.get("resourceType") == "OperationOutcome":
                notes.append(f"{where}.entry[{index}]: the client reported an OperationOutcome (ignored)")
                continue
            pairs.append((f"{where}.entry[{index}]", resource))
    return pairs, notes


def parse_feedback(data: Any) -> list[dict[str, Any]]:
    """Check a feedback body (``{"feedback": [...]}``, the spec's Feedback fields); :class:`CdsError` 400."""
    if not isinstance(data, dict) or not isinstance(data.get("feedback"), list) or not data["feedback"]:
        raise CdsError(400, "feedback must be an object holding a non-empty array 'feedback'")
    items = []
    for index, item in enumerate(data["feedback"]):
        at = f"feedback[{index}]"
        if not isinstance(item, dict):
            raise CdsError(400, f"{at} is not an object")
        card = _string(item.get("card"), f"{at}.card")
        outcome = item.get("outcome")
        if outcome not in ("accepted", "overridden"):
            raise CdsError(400, f"{at}.outcome must be 'accepted' or 'overridden'")
        stamp = _string(item.get("outcomeTimestamp"), f"{at}.outcomeTimestamp")
        try:
            datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            raise CdsError(400, f"{at}.outcomeTimestamp is not an ISO 8601 date-time") from None
        accepted = item.get("acceptedSuggestions")
        if outcome == "accepted" and not isinstance(accepted, list):
            raise CdsError(400, f"{at}.acceptedSuggestions is required for an accepted outcome")
        if accepted is not None and not (isinstance(accepted, list) and all(
                isinstance(a, dict) and isinstance(a.get("id"), str) for a in accepted)):
            raise CdsError(400, f"{at}.acceptedSuggestions must be an array of objects with an id")
        reason = item.get("overrideReason")
        if reason is not None:
            coding = reason.get("reason") if isinstance(reason, dict) else None
            if not isinstance(reason, dict) or (coding is not None and not (
                    isinstance(coding, dict) and isinstance(coding.get("code"), str))) or \
                    not isinstance(reason.get("userComment", ""), str):
                raise CdsError(400, f"{at}.overrideReason must be an object with a reason Coding and/or a "
                                    "userComment string")
        items.append({"card": card, "outcome": outcome, "outcomeTimestamp": stamp,
                      "acceptedSuggestions": [a["id"] for a in accepted or []],
                      "overrideReason": (reason or {}).get("reason"),
                      "userComment": (reason or {}).get("userComment")})
    return items


class ViewStore:
    """Reports kept for their views: a bounded LRU of compressed JSON by random uuid, each for ``ttl`` seconds."""

    def __init__(self, *, ttl: float = 3600.0, max_entries: int = VIEWS_KEPT, max_bytes: int = _VIEW_BYTES,
                 clock: Any = time.monotonic) -> None:
        self.ttl, self.max_entries, self.max_bytes, self.clock = ttl, max_entries, max_bytes, clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, report: Mapping[str, Any]) -> str:
        blob = zlib.compress(json.dumps(report, separators=(",", ":")).encode("utf-8"), 6)
        key = str(uuid.uuid4())  # 122 random bits from os.urandom
        with self._lock:
            self._items[key] = (self.clock() + self.ttl, blob)
            self._bytes += len(blob)
            while self._items and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
                self._bytes -= len(self._items.popitem(last=False)[1][1])
        return key

    def get(self, key: str) -> dict[str, Any] | None:
        """The report of a live view, else ``None`` (unknown, evicted or expired)."""
        if not _UUID.match(key):
            return None
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= self.clock():
                del self._items[key]
                self._bytes -= len(item[1])
                return None
            self._items.move_to_end(key)
        return json.loads(zlib.decompress(item[1]))


class FeedbackLog:
    """Feedback items: one line each on stderr and, with a file, one JSON line each appended to it."""

    def __init__(self, path: str | Path | None = None, *, stream: Any = None) -> None:
        self.path, self.stream = (Path(path) if path else None), stream
        self._issued: OrderedDict[str, str] = OrderedDict()  # card uuid -> hookInstance
        self._lock = threading.Lock()

    def issued(self, card: str, hook_instance: str) -> None:
        with self._lock:
            self._issued[card] = hook_instance
            while len(self._issued) > 10_000:
                self._issued.popitem(last=False)

    def record(self, service: str, items: Sequence[dict[str, Any]]) -> None:
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        with self._lock:
            rows = [{"received": stamp, "service": service, **item, "known_card": item["card"] in self._issued,
                     "hookInstance": self._issued.get(item["card"])} for item in items]
            stream = self.stream or sys.stderr
            for row in rows:  # json.dumps escapes anything that could forge a log line
                reason = row["overrideReason"]["code"] if isinstance(row["overrideReason"], dict) else None
                stream.write(f"mas-kg: cds feedback: card={json.dumps(row['card'][:100])} outcome={row['outcome']} "
                             f"known={str(row['known_card']).lower()} reason={json.dumps(reason)}\n")
            stream.flush()
            if self.path is not None:
                try:
                    with self.path.open("a", encoding="utf-8") as handle:
                        handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
                except OSError as error:
                    stream.write(f"mas-kg: warning: --cds-feedback-log {self.path}: {error.strerror or error}\n")


class CdsHooks:
    """The service's state in the server: token verifier (or none), views, feedback log, public base URL."""

    def __init__(self, *, verifier: Any = None, base_url: str | None = None, views: ViewStore | None = None,
                 feedback: FeedbackLog | None = None, version: str = "", cors_origins: Sequence[str] = ()) -> None:
        self.verifier, self.base_url = verifier, base_url
        self.cors_origins = frozenset(cors_origins)  # browser-based CDS clients allowed (CORS); "*" for any
        self.views, self.feedback = views or ViewStore(), feedback or FeedbackLog()
        self.version = version

    @classmethod
    def from_args(cls, args: Any) -> "CdsHooks":
        """From ``serve``'s options; :class:`InputError` for a bad option or key set (exit 2)."""
        from . import __version__
        from .cds_auth import DEFAULT_ALGORITHMS, TokenVerifier, load_jwks

        jwks = getattr(args, "cds_jwks", None)
        issuers, algorithms = getattr(args, "cds_issuer", None) or [], getattr(args, "cds_algorithms", None)
        if not jwks and (issuers or algorithms):
            raise InputError(f"{'--cds-issuer' if issuers else '--cds-algorithms'} needs --cds-jwks")
        base = getattr(args, "cds_base_url", None)
        if base is not None:
            base = base.rstrip("/")
            if not re.match(r"^https?://[^\s/?#@]+(/[^\s?#]*)?$", base):
                raise InputError(f"--cds-base-url {base!r}: expected http(s)://host[:port][/path], no query")
        ttl = getattr(args, "cds_view_ttl", 3600.0)
        if not 0 < ttl < float("inf"):
            raise InputError(f"--cds-view-ttl: {ttl:g} is not a positive number of seconds")
        verifier = None
        if jwks:
            chosen = [a.strip() for a in algorithms.split(",")] if algorithms else list(DEFAULT_ALGORITHMS)
            verifier = TokenVerifier(load_jwks(jwks), issuers=issuers, algorithms=chosen)
        origins = getattr(args, "cds_cors_origin", None) or []
        for origin in origins:
            if origin != "*" and not re.match(r"^https?://[^\s/?#@]+$", origin):
                raise InputError(f"--cds-cors-origin {origin!r}: expected * or scheme://host[:port], no path")
        return cls(verifier=verifier, base_url=base, views=ViewStore(ttl=ttl),
                   feedback=FeedbackLog(getattr(args, "cds_feedback_log", None)), version=__version__,
                   cors_origins=origins)

    def base(self, host: str | None, fallback: str) -> str:
        """The public base URL: ``--cds-base-url``, else ``http://`` and the Host header (checked), else
        ``fallback`` (a request without Host)."""
        if self.base_url:
            return self.base_url
        if host is None:
            return fallback
        if not _HOST.match(host):
            raise CdsError(400, "the Host header is not a host[:port]")
        return f"http://{host}"

    def authenticate(self, authorization: str | None, *, audience: str) -> None:
        """Check the bearer JWT (when verification is on); :class:`CdsError` 401 (503 if the replay memory is full)."""
        if self.verifier is None:
            return
        from .cds_auth import ReplayCacheFull, TokenError

        try:
            self.verifier.verify(authorization, audience=audience)
        except TokenError as error:
            said = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "?" for ch in str(error))
            challenge = 'Bearer realm="mas-kg"' if error.missing else \
                f'Bearer realm="mas-kg", error="invalid_token", error_description="{said}"'
            raise CdsError(401, str(error), {"WWW-Authenticate": challenge}) from None
        except ReplayCacheFull as error:
            raise CdsError(503, str(error), {"Retry-After": "30"}) from None

    def evaluate(self, request: HookRequest, engine: Any) -> tuple[dict[str, Any], Sequence[str]]:
        """The report of the context's patient (the prefetch notes added to its notes) and where each of its
        observations came from; :class:`CdsError` 412 if the prefetch holds no such patient."""
        from .fhir import read_resources

        pairs, notes = prefetch_resources(request)
        patients = read_resources(pairs, kb=engine.kb)
        chosen = next((p for p in patients if p.data.get("id") == request.patient_id), None)
        if chosen is None:
            found = ", ".join(repr(str(p.data.get("id"))[:60]) for p in patients[:5]) or "none"
            raise CdsError(412, f"the prefetch holds no Patient {request.patient_id[:100]!r} (context.patientId); "
                                f"patients found: {found}")
        if len(patients) > 1:
            notes.append(f"resources of {len(patients) - 1} other patient(s) in the prefetch were ignored")
        report = engine.explain(chosen.patient).to_dict()
        report["notes"] = list(report.get("notes", [])) + notes
        return report, chosen.sources

    def cards(self, report: dict[str, Any], sources: Sequence[str], *, base: str,
              hook_instance: str) -> list[dict[str, Any]]:
        """The response's cards; the report is kept for its view when a card links to it."""
        view = f"{base}/cds-services/{SERVICE_ID}/views/{self.views.put(report)}" \
            if _would_card(report) else None
        card = main_card(report, sources=sources, view_url=view, version=self.version, hook_instance=hook_instance)
        if card is None:
            return []
        self.feedback.issued(card["uuid"], hook_instance)
        return [card]

    def view_html(self, key: str, *, kb: Any) -> str | None:
        """The causal-graph page of a live view (``Report.to_html()``'s page), else ``None``."""
        report = self.views.get(key)
        if report is None:
            return None
        from .views import graph_view

        return graph_view(kb=kb, report=report).html


def _would_card(report: dict[str, Any]) -> bool:
    from .cds_cards import indicator_of

    return indicator_of(report) is not None
