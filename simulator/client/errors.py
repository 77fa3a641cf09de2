"""Errors of the endpoint client; each error names the failure class it is recorded as.

::

    Exception
      EndpointError              kind: the record's error class
        EndpointTimeout          "timeout": no complete answer within --timeout
        EndpointConnectError     "connect": refused, reset, DNS, TLS
        EndpointStatusError      "http_4xx" / "http_5xx" (carries status, and whether the body was JSON)
          ModelNotFound          a 404 that says the model is not served
        ContextOverflow          "context_overflow": the prompt exceeds the context window
        EndpointProtocolError    "protocol": malformed HTTP, body or stream; a wrongly typed field; a reply
                                 over a size cap; a broken or empty stream
"""

from __future__ import annotations


class EndpointError(Exception):
    kind = "error"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EndpointTimeout(EndpointError):
    kind = "timeout"


class EndpointConnectError(EndpointError):
    kind = "connect"


class EndpointStatusError(EndpointError):
    def __init__(self, message: str, status: int, json_body: bool = False) -> None:
        super().__init__(message, status)
        self.kind = "http_5xx" if status >= 500 else "http_4xx"
        self.json_body = json_body  # the body was a JSON document: an API's error, not a proxy's page


class ModelNotFound(EndpointStatusError):
    pass


class ContextOverflow(EndpointError):
    kind = "context_overflow"


class EndpointProtocolError(EndpointError):
    kind = "protocol"
