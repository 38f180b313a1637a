"""Trusting CDS clients: the bearer JWT that CDS Hooks asks of every call (``mas-kg serve --cds-jwks``).

The CDS Hooks specification ("Trusting CDS Clients") has the client sign a
JWT with its private key and send it as ``Authorization: Bearer <JWT>`` on
every call (discovery, service, feedback).  The service verifies it against
the client's public keys, a JSON Web Key Set agreed out of band.  What
:class:`TokenVerifier` checks, in order:

* the header: ``alg`` in the allowed list (ES384 and RS384 by default, the
  spec's recommendation; ``none`` and every HMAC algorithm can never be
  allowed, so a public key can never be used as an HMAC secret), ``kid``
  present and naming a key of the set, the key's type and curve fitting
  ``alg`` (an EC P-384 key only for ES384, an RSA key only for RS*/PS*), the
  key's own ``alg`` (if it has one) equal to the header's, ``typ`` absent or
  ``JWT``.  ``jku`` is never followed: no key is ever fetched;
* the signature, by that key;
* the claims: ``iss`` present (and, with ``--cds-issuer``, one of those
  given), ``aud`` equal to (or, as an array, holding) the URL of the endpoint
  called, ``exp`` in the future and ``iat`` not in the future (60 s leeway
  for clock skew), ``exp - iat`` at most 5 minutes (the spec asks only for
  ``exp``; the 5-minute lifetime is SMART Backend Services' rule for such
  one-time tokens, and bounds the replay memory), ``jti`` present;
* the replay guard: a ``(iss, jti)`` pair is accepted once.  Pairs are
  forgotten once their token has expired (plus the leeway); at most
  ``max_replay`` are held, and when that many unexpired tokens are held new
  ones are refused (503) rather than forgetting one early.

Every failure is a :class:`TokenError` whose message is one line, safe to
put in a ``WWW-Authenticate`` header.

>>> verifier = TokenVerifier(load_jwks_data({"keys": []}, where="inline"))
>>> try:
...     verifier.verify(None, audience="https://cds.example.org/cds-services")
... except TokenError as error:
...     print(error.missing, error)
True no bearer token: send Authorization: Bearer <JWT signed by a trusted CDS client>
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import InputError

__all__ = ["TokenVerifier", "TokenError", "ReplayCacheFull", "KeySet", "load_jwks", "load_jwks_data",
           "DEFAULT_ALGORITHMS", "ALLOWED_ALGORITHMS", "MAX_LIFETIME", "LEEWAY"]

DEFAULT_ALGORITHMS = ("ES384", "RS384")
#: asymmetric algorithms only: the spec forbids ``none`` and HMAC (a shared secret)
ALLOWED_ALGORITHMS = frozenset({"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384",
                                "PS512", "EdDSA"})
MAX_LIFETIME = 300  # seconds between iat and exp
LEEWAY = 60  # seconds of clock skew allowed on exp and iat
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_MAX_TOKEN = 16_384  # characters; a CDS Hooks JWT is a few hundred


class TokenError(Exception):
    """A refused bearer token (401); ``missing`` when there was none at all."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class ReplayCacheFull(Exception):
    """Too many unexpired tokens held to take another one safely (503)."""


@dataclass(frozen=True)
class KeySet:
    """The trusted clients' public keys by ``kid``: ``kid -> (kty, crv, alg, key object)``."""

    keys: Mapping[str, tuple[str, str | None, str | None, Any]]
    where: str


def load_jwks(path: str | Path) -> KeySet:
    """Read a JWK Set file; :class:`InputError` (one line) if it is not a usable set of public keys."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"--cds-jwks {path}: cannot read it ({getattr(error, 'strerror', None) or error})") \
            from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise InputError(f"--cds-jwks {path}: not JSON ({error})") from None
    return load_jwks_data(data, where=f"--cds-jwks {path}")


def load_jwks_data(data: Any, *, where: str) -> KeySet:
    """A JWK Set (``{"keys": [...]}``) as a :class:`KeySet`: public asymmetric keys, each with a unique ``kid``."""
    import jwt

    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise InputError(f'{where}: not a JSON Web Key Set (expected {{"keys": [...]}})')
    keys: dict[str, tuple[str, str | None, str | None, Any]] = {}
    for index, jwk in enumerate(data["keys"]):
        at = f"{where}: keys[{index}]"
        if not isinstance(jwk, dict):
            raise InputError(f"{at}: not a JSON object")
        kid, kty = jwk.get("kid"), jwk.get("kty")
        if not isinstance(kid, str) or not kid:
            raise InputError(f"{at}: no kid (CDS Hooks requires one per key)")
        if kid in keys:
            raise InputError(f"{at}: kid {kid!r} appears twice")
        if kty not in ("EC", "RSA", "OKP"):
            raise InputError(f"{at} ({kid}): kty {kty!r} is not an asymmetric key type (EC, RSA, OKP)")
        if any(part in jwk for part in ("d", "p", "q", "dp", "dq", "qi")):
            raise InputError(f"{at} ({kid}): holds a private key; give the clients' public keys only")
        if jwk.get("use") not in (None, "sig"):
            raise InputError(f"{at} ({kid}): use {jwk.get('use')!r} is not 'sig'")
        alg = jwk.get("alg")
        if alg is not None and alg not in ALLOWED_ALGORITHMS:
            raise InputError(f"{at} ({kid}): alg {alg!r} is not an asymmetric signature algorithm")
        try:
            key = jwt.PyJWK(jwk).key
        except Exception as error:  # PyJWT raises several kinds for malformed keys
            raise InputError(f"{at} ({kid}): not a usable key ({' '.join(str(error).split())[:200]})") from None
        keys[kid] = (kty, jwk.get("crv"), alg, key)
    return KeySet(keys, where)


class TokenVerifier:
    """Verifies CDS Hooks bearer JWTs (see the module docstring); thread-safe."""

    def __init__(self, keys: KeySet, *, issuers: Iterable[str] = (), algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
                 leeway: int = LEEWAY, max_lifetime: int = MAX_LIFETIME, max_replay: int = 100_000,
                 clock: Any = time.time) -> None:
        self.keys, self.issuers = keys, frozenset(issuers)
        self.algorithms = tuple(algorithms)
        refused = [a for a in self.algorithms if a not in ALLOWED_ALGORITHMS]
        if refused or not self.algorithms:
            raise InputError(f"--cds-algorithms: {', '.join(refused) or '(none)'} not allowed; choose among "
                             f"{', '.join(sorted(ALLOWED_ALGORITHMS))} (never none or HMAC)")
        self.leeway, self.max_lifetime, self.max_replay, self.clock = leeway, max_lifetime, max_replay, clock
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, authorization: str | None, *, audience: str) -> dict[str, Any]:
        """The claims of a valid ``Authorization: Bearer`` token for the endpoint URL ``audience``; else
        :class:`TokenError` (or :class:`ReplayCacheFull`)."""
        import jwt

        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise TokenError("no bearer token: send Authorization: Bearer <JWT signed by a trusted CDS client>",
                             missing=True)
        if len(token) > _MAX_TOKEN:
            raise TokenError("the token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("the token is not a JWS compact serialization") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise TokenError(f"alg {_show(alg)} is not accepted (accepted: {', '.join(self.algorithms)})")
        if header.get("typ") not in (None, "JWT"):
            raise TokenError(f"typ {_show(header.get('typ'))} is not JWT")
        if not isinstance(kid, str) or kid not in self.keys.keys:
            raise TokenError(f"kid {_show(kid)} names no trusted key" if kid is not None else
                             "the token header has no kid (CDS Hooks requires one)")
        kty, crv, key_alg, key = self.keys.keys[kid]
        fits = (kty == "EC" and alg.startswith("ES") and crv == _CURVES.get(alg)) or \
            (kty == "RSA" and alg[:2] in ("RS", "PS")) or (kty == "OKP" and alg == "EdDSA")
        if not fits or (key_alg is not None and key_alg != alg):
            raise TokenError(f"key {_show(kid)} is not for alg {alg}")
        try:
            claims = jwt.decode(token, key, algorithms=[alg], audience=audience, leeway=self.leeway,
                                options={"require": ["iss", "aud", "exp", "iat", "jti"]})
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("the token's iat or nbf is in the future") from None
        except jwt.InvalidAudienceError:
            raise TokenError(f"aud does not name this endpoint ({audience})") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenError(f"the token has no {error.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise TokenError("the signature does not verify with key " + _show(kid)) from None
        except jwt.PyJWTError as error:
            raise TokenError(f"invalid token: {' '.join(str(error).split())[:120]}") from None
        iss, jti, exp, iat = claims.get("iss"), claims.get("jti"), claims["exp"], claims["iat"]
        if not isinstance(iss, str) or not iss:
            raise TokenError("iss is not a non-empty string")
        if self.issuers and iss not in self.issuers:
            raise TokenError(f"iss {_show(iss)} is not an accepted issuer")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise TokenError("jti is not a non-empty string of at most 256 characters")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (exp, iat)):
            raise TokenError("exp and iat must be numbers of seconds since the epoch")
        if exp - iat > self.max_lifetime:
            raise TokenError(f"the token lives {exp - iat:g} s (exp - iat); at most {self.max_lifetime} s accepted")
        self._remember(iss, jti, float(exp))
        return claims

    def _remember(self, iss: str, jti: str, exp: float) -> None:
        now = self.clock()
        with self._lock:
            seen = self._seen
            while seen and next(iter(seen.values())) + self.leeway < now:
                seen.popitem(last=False)
            if (iss, jti) in seen:
                raise TokenError("jti has been used before (replay)")
            if len(seen) >= self.max_replay:
                for pair in [p for p, until in seen.items() if until + self.leeway < now]:
                    del seen[pair]
                if len(seen) >= self.max_replay:
                    raise ReplayCacheFull(f"{len(seen)} unexpired tokens held; try again shortly")
            seen[(iss, jti)] = exp


def _show(value: Any) -> str:
    """A value from a token, quoted and cut, with nothing that could break a header."""
    text = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "?" for ch in str(value))
    return f"'{text[:60]}'"
