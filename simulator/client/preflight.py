"""Before any load: the target is reached, speaks the protocol and serves the model."""

from __future__ import annotations

import sys

from simulator.client.client import EndpointClient
from simulator.client.errors import (
    ContextOverflow,
    EndpointError,
    EndpointStatusError,
    ModelNotFound,
)
from simulator.usage import UsageError


async def preflight(client: EndpointClient) -> None:
    """Reach the target, check it speaks the protocol and serves the model, before any load.

    A listed model is served, an unlisted one is not. An empty list says nothing: servers
    that load models on demand (Hugging Face `transformers serve`) list none until one is
    loaded. Then, as when there is no model list (no /models route, or not a JSON list), one
    request of one token decides, under the turn deadline (--timeout): it may be the request
    that loads the model. Without a list, that request is the only evidence the target is an
    OpenAI-compatible endpoint: an answer that does not parse (an HTML page), a 404 (or 405,
    501) on the completions path, a non-JSON error page, refused credentials or silence stop
    here, with a hint when the base URL lacks its /v1. Before all that, a warning (stderr,
    once) when credentials would go over plain http to a host that is not loopback."""
    where = client.shown_url
    warning = client.plain_http_warning()
    if warning:
        print(f"convsim: warning: {warning}", file=sys.stderr, flush=True)
    try:
        models = await client.list_models()
    except EndpointError as exc:
        if isinstance(exc, EndpointStatusError) and exc.status in (401, 403):
            raise UsageError(f"--target {where}: GET /models refused the credentials ({exc}); check --api-key "
                             f"and --header") from None
        raise UsageError(f"--target {where}: not reachable ({exc}); check the URL and that the server is up") from None
    if models:
        if client.model not in models:
            shown = ", ".join(models[:8])
            raise UsageError(f"--model {client.model!r} is not served by {where} (it serves: {shown}); pass --model NAME")
        return
    try:
        await client.complete([{"role": "user", "content": "ping"}], stream=False, params={"max_tokens": 1})
    except EndpointError as exc:
        hint = client.path_hint() if models is None else ""
        if isinstance(exc, ContextOverflow) and exc.status is None:
            return  # a 200 whose one token decoded to no text: the model answered
        if isinstance(exc, ModelNotFound):
            raise UsageError(f"--model {client.model!r}: {exc}; pass --model NAME{hint}") from None
        if models is not None:  # an empty list: the probe was the only evidence
            raise UsageError(f"--model {client.model!r}: {where} lists no models (it may load them on demand) and a "
                             f"1-token request for it failed ({exc}); pass --model NAME of a model that server can "
                             f"load, or a larger --timeout if loading it takes longer") from None
        if exc.kind in ("connect", "timeout"):
            raise UsageError(f"--target {where}: not reachable ({exc}){hint}") from None
        if isinstance(exc, EndpointStatusError) and exc.status in (401, 403):
            raise UsageError(f"--target {where}: refused the credentials ({exc}); check --api-key and --header") from None
        if exc.kind == "protocol" or (isinstance(exc, EndpointStatusError) and (
                exc.status in (404, 405, 501) or not exc.json_body)):
            raise UsageError(f"--target {where}: does not answer as an OpenAI-compatible endpoint (no model list at "
                             f"GET /models; POST /chat/completions: {exc}){hint}") from None
        # any other JSON error (429, 5xx, a refused parameter): the target speaks the protocol; the load will tell
