"""Keep secrets out of everything convsim writes or prints.

Two functions, applied before a string reaches an exception message, a record, a log line
or a file:

- `redact_url` (from `session_store.redact`, so the store uses the same one): a URL without its userinfo (``user:password@``) and with the values of
  secret-looking query parameters (``?api_key=``, ``?password=``, ``?token=``...) replaced
  by ``***``;
- `redact_text`: text that came back from a server (an error body, a message) without the
  secrets the client sent (the API key, header values, URL credentials), fragments of them
  (a server that quotes ``sk-abcdefgh...wxyz`` back), bearer tokens, ``sk-``-style keys,
  ``password=...`` pairs and credentials inside URLs.

`Redactor` binds `redact_text` to one client's secrets.
"""

from __future__ import annotations

import re
from typing import Iterable

from session_store.redact import CREDENTIAL_PAIR, REDACTED, SECRET_NAME, redact_url

__all__ = ["REDACTED", "SECRET_NAME", "Redactor", "redact_text", "redact_url"]

MIN_SECRET = 4  # shorter "secrets" (a key of "x") are not searched for: they would blank ordinary text
FRAGMENT = 8  # a run of text that shares this many consecutive characters with a secret is redacted whole
NOT_SECRETS = frozenset({"empty", "none", "null", "dummy", "no-key"})  # placeholder keys (Open-AutoGLM: EMPTY)

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
_BEARER = re.compile(r"\b(bearer)(\s+)[A-Za-z0-9._~+/=\-]{6,}", re.IGNORECASE)
_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk|gsk|xai|hf|ghp|gho|github_pat)[-_][A-Za-z0-9_\-*.]{6,}|\bAIza[0-9A-Za-z_\-]{20,}")
_RUN = re.compile(r"[A-Za-z0-9_\-.~+/=*]{6,}")




def _grams(secret: str) -> set[str]:
    return {secret[i:i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)}


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` (from a server, a store, a library) with secrets and credential-looking parts
    replaced by ***: every secret given (whole, and any run of text sharing FRAGMENT
    characters with one), URLs' credentials, bearer tokens, key-like tokens, `name=value`
    pairs whose name says secret."""
    return Redactor(secrets)(text)


class Redactor:
    """`redact_text` bound to the secrets one client sends (built once, used per error)."""

    __slots__ = ("_secrets", "_grams")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        kept = {s for s in secrets if s and len(s) >= MIN_SECRET and s.strip().lower() not in NOT_SECRETS}
        self._secrets = sorted(kept, key=len, reverse=True)  # longest first: a key inside a header value
        self._grams: set[str] = set().union(*(_grams(s) for s in kept)) if kept else set()

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if self._grams:
            text = _RUN.sub(self._fragment, text)
        text = _URL.sub(lambda m: redact_url(m.group(0)), text)
        text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        text = _KEY_LIKE.sub(REDACTED, text)
        return CREDENTIAL_PAIR.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)

    def _fragment(self, match: re.Match[str]) -> str:
        run = match.group(0)
        grams = self._grams
        if any(run[i:i + FRAGMENT] in grams for i in range(len(run) - FRAGMENT + 1)):
            return REDACTED
        return run
