"""Secrets out of URLs: the one redaction of URLs in convsim (Redis URLs, target URLs, any
URL inside a message), in the package every other one may import."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"
SECRET_NAME = re.compile(r"auth|key|token|secret|cookie|passw|pwd|credential|signature|sig$|session", re.IGNORECASE)
CREDENTIAL_PAIR = re.compile(
    r"\b(password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key|access[_-]?token|auth[_-]?token|token"
    r"|authorization|x-api-key)(\"?'?\s*[=:]\s*\"?'?)([^\s\"'&,;)}\]]+)",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """`url` without userinfo and with secret-looking query values replaced by ***; a string
    that does not parse as a URL comes back with only its credential-like parts masked."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(SECRET_NAME.search(name) for name, _ in pairs):
                query = urlencode([(n, REDACTED if SECRET_NAME.search(n) else v) for n, v in pairs], safe="*")
        if netloc == parts.netloc and query == parts.query:
            return url
        shown = urlunsplit(parts._replace(netloc=netloc, query=query))
        if url.startswith(f"{parts.scheme}://") and not shown.startswith(f"{parts.scheme}://"):
            shown = f"{parts.scheme}://" + shown[len(parts.scheme) + 1:]  # unix:///path keeps its empty host
        return shown
    except ValueError:  # 'redis://[::1' and friends
        return CREDENTIAL_PAIR.sub(lambda m: m.group(1) + m.group(2) + REDACTED, re.sub(r"//[^/@\s]*@", f"//{REDACTED}@", url))
