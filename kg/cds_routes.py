"""The CDS Hooks routes of ``mas-kg serve``: a mixin of :class:`kg.server.Handler` (HTTP in, :mod:`kg.cdshooks` out).

Routes: ``GET /cds-services`` (discovery), ``POST /cds-services/{id}`` (the
service), ``POST /cds-services/{id}/feedback`` and ``GET
/cds-services/{id}/views/{uuid}`` (the causal graph a card links to: a
capability URL, no token).  Every other call checks the bearer token first
(its ``aud`` is this endpoint's public URL).  A refusal is a
:class:`~kg.cdshooks.CdsError`, which the handler answers as a one-line JSON
error with its status and headers; CORS headers go only to the origins
``--cds-cors-origin`` names.

>>> route("/cds-services/mas-kg-patient-view/feedback"), route("/cds-services/x/y")
((('POST',), '_cds_feedback'), ((), ''))
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

from .cdshooks import SERVICE_ID, CdsError, discovery, parse_feedback, parse_request

__all__ = ["CdsRoutes", "route"]

_JSON = "application/json; charset=utf-8"


def route(path: str) -> tuple[tuple[str, ...], str]:
    """/cds-services/{id} (POST), .../feedback (POST), .../views/{uuid} (GET); else no route (404)."""
    parts = path.split("/")[2:]
    if len(parts) == 1 and parts[0]:
        return ("POST",), "_cds_service"
    if len(parts) == 2 and parts[0] and parts[1] == "feedback":
        return ("POST",), "_cds_feedback"
    if len(parts) == 3 and parts[0] and parts[1] == "views" and parts[2]:
        return ("GET",), "_cds_view"
    return (), ""


class CdsRoutes:
    """The CDS Hooks handlers; the handler class provides ``server``, ``headers``, ``path``, ``_send``,
    ``_json``, ``_body`` and ``_media``."""

    server: Any
    headers: Any
    path: str

    def _cors(self) -> dict[str, str]:
        """CORS headers for a browser-based CDS client whose Origin ``--cds-cors-origin`` allows (CDS endpoints
        only; none otherwise: the SPARQL endpoint stays same-origin)."""
        cds, origin = self.server.cds, self.headers.get("Origin")
        if cds is None or not origin or not urlsplit(self.path).path.startswith("/cds-services"):
            return {}
        allowed = cds.cors_origins
        if "*" not in allowed and origin not in allowed:
            return {}
        return {"Access-Control-Allow-Origin": "*" if "*" in allowed else origin, "Vary": "Origin"}

    def _preflight(self, allowed: tuple[str, ...]) -> None:
        """OPTIONS on a CDS endpoint: a CORS preflight (204 with the methods and headers a client may use)."""
        if not self._cors():
            raise CdsError(403, "cross-origin calls from this Origin are not allowed (see --cds-cors-origin)")
        headers = {"Access-Control-Allow-Methods": ", ".join(allowed + ("OPTIONS",)),
                   "Access-Control-Allow-Headers": "Authorization, Content-Type", "Access-Control-Max-Age": "600"}
        self._send(204, "", _JSON, headers)  # type: ignore[attr-defined]

    def _service(self) -> Any:
        """The server's :class:`~kg.cdshooks.CdsHooks` (404 if the service is off)."""
        if self.server.cds is None:
            raise CdsError(404, "the CDS Hooks service is not enabled on this server")
        return self.server.cds

    def _cds_checked(self, url: Any, *, body: bool) -> tuple[str, Any]:
        """Authenticate (the token's aud must be this endpoint's public URL), check the service id and read
        a JSON body; return the public base URL and the body."""
        cds = self._service()
        host, port = self.server.server_address[:2]
        base = cds.base(self.headers.get("Host"), f"http://{f'[{host}]' if ':' in host else host}:{port}")
        cds.authenticate(self.headers.get("Authorization"), audience=base + url.path)
        parts = url.path.split("/")
        if len(parts) > 2 and parts[2] != SERVICE_ID:
            raise CdsError(404, f"no CDS service {unquote(parts[2])[:100]!r}; see GET /cds-services")
        if not body:
            return base, None
        media = self._media()  # type: ignore[attr-defined]
        if media and media != "application/json" and not media.endswith("+json"):
            raise CdsError(415, "POST CDS Hooks requests as application/json")
        try:
            return base, json.loads(self._body().decode("utf-8"))  # type: ignore[attr-defined]
        except UnicodeDecodeError:
            raise CdsError(400, "the request body is not UTF-8") from None
        except ValueError as error:
            raise CdsError(400, f"the request body is not JSON: {error}") from None

    def _cds_discovery(self, url: Any) -> None:
        self._cds_checked(url, body=False)
        self._json(200, discovery())  # type: ignore[attr-defined]

    def _cds_service(self, url: Any) -> None:
        base, data = self._cds_checked(url, body=True)
        request = parse_request(data)
        cds = self._service()
        with self.server.engine_lock:
            report, sources = cds.evaluate(request, self.server.engine)
        cards = cds.cards(report, sources, base=base, hook_instance=request.hook_instance)
        self._json(200, {"cards": cards})  # type: ignore[attr-defined]

    def _cds_feedback(self, url: Any) -> None:
        _, data = self._cds_checked(url, body=True)
        items = parse_feedback(data)
        self._service().feedback.record(SERVICE_ID, items)
        self._json(200, {"received": len(items)})  # type: ignore[attr-defined]

    def _cds_view(self, url: Any) -> None:
        """A capability URL: no token (a clinician's browser opens it); unknown or expired -> 404."""
        _, service, _, key = url.path.split("/")[1:]
        if service != SERVICE_ID:
            raise CdsError(404, f"no CDS service {unquote(service)[:100]!r}; see GET /cds-services")
        cds = self._service()
        with self.server.engine_lock:
            page = cds.view_html(key, kb=self.server.engine.kb)
        if page is None:
            raise CdsError(404, "no such view: it has expired or never existed (views last --cds-view-ttl seconds)")
        headers = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
        self._send(200, page, "text/html; charset=utf-8", headers)  # type: ignore[attr-defined]
