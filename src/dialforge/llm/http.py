"""OpenAI-compatible HTTP backend (vLLM, SGLang, TGI, Ollama, llama.cpp, OpenAI, ...).

Built on aiohttp + orjson rather than the `openai` SDK: the SDK spends ~2.4 ms of CPU per
request, which caps a 2-core client near 400 req/s; this path stays under 1 ms.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import orjson

from ..aio import gather_or_cancel
from ..errors import BackendUnavailable, ConfigError
from .limiter import AIMDLimiter
from .secrets import mask_secrets, register_secret, truncate_masked
from .structured import bounded_schema
from .types import ChatRequest, Completion, SamplingParams, Usage

log = logging.getLogger("dialforge.llm")

_PUSHBACK = (429, 503)

DIALECTS = ("json_schema", "json_object", "prompt")
"""How a structured request is sent, richest first: `response_format` of type `json_schema`
(vLLM, SGLang, OpenAI, llama.cpp's C++ server), of type `json_object` with the schema beside it
(llama-cpp-python's form), or plain text with the schema in the prompt. An endpoint starts at
the configured one and moves down once when the server refuses the field (an error whose body
names it) or ignores it (a reply that is not JSON before any reply in that dialect was)."""

_LEARNED: dict[str, dict[str, Any]] = {}
"""What this process learned per base URL: the structured-output dialect and whether token-id
prompts are taken, so each stage's backend does not ask again."""

_NAMES_THE_FIELD = ("response_format", "json_schema", "json_object", "schema", "grammar")
_TOKEN_PROMPT_WORDS = ("str", "list", "type", "integer", "array", "token id")

SCHEMA_INSTRUCTION = "Reply with only one JSON object that matches this JSON schema, and nothing else:\n{schema}"


def schema_messages(messages: list[dict[str, str]], schema: dict[str, Any]) -> list[dict[str, str]]:
    """The messages with the schema stated in the prompt (for servers that cannot constrain):
    added to the last user message, or as a new one; nothing when a message already shows it."""
    text = json.dumps(schema)
    if any(text in (m.get("content") or "") for m in messages):
        return messages
    note = SCHEMA_INSTRUCTION.format(schema=text)
    if messages and messages[-1].get("role") == "user":
        last = messages[-1]
        return [*messages[:-1], {**last, "content": f"{last.get('content') or ''}\n\n{note}"}]
    return [*messages, {"role": "user", "content": note}]


def looks_like_json(text: str) -> bool:
    """Whether a reply is shaped like JSON (an object or array, maybe fenced or cut short):
    what a server that honours `response_format` sends. Prose means it ignored the field."""
    s = text.strip()
    if s.startswith("```"):
        s = s.lstrip("`").removeprefix("json").strip()
    return s.startswith(("{", "["))


class _HTTPFailure(Exception):
    """A failed attempt; `status` and `body` (lower case) when the server answered."""

    status: int | None = None
    body: str = ""
    ticket: int | None = None  # the limiter ticket of the attempt (fleet)


class _Retryable(_HTTPFailure):
    def __init__(
        self,
        msg: str,
        retry_after: float | None = None,
        pushback: bool = False,
        down: bool = False,
        overload: bool = False,
    ) -> None:
        super().__init__(msg)
        self.retry_after = retry_after
        self.pushback = pushback
        self.down = down  # refused or dropped the connection: an endpoint fleet takes it out
        self.overload = overload  # a timeout or a dropped connection: the limiter cuts at once


class _Fatal(_HTTPFailure):
    """A 4xx that retrying will not fix (bad request, auth)."""


class _Unreachable(_Retryable):
    """No HTTP exchange at all (refused, DNS, TLS): retried for `connect_retry_s` seconds."""


class _EndpointFatal(_Fatal):
    """The endpoint cannot serve any request (auth, unknown model or path)."""


def backoff_delay(attempt: int, base_s: float, max_s: float, retry_after: float | None = None) -> float:
    """The wait before retry `attempt` (0-based): the server's `Retry-After` when it names
    one, else exponential backoff with jitter (x0.5-1.5, so clients that failed together do
    not come back together). The HTTP backend and the endpoint fleet both use it."""
    if retry_after:
        return retry_after
    return min(max_s, base_s * 2**attempt) * (0.5 + random.random())


async def all_samples(
    one: Callable[[ChatRequest], Awaitable[Completion]], req: ChatRequest, comp: Completion
) -> Completion:
    """`comp` with all `n` samples: a server that ignores `n` (llama-cpp-python answers one
    choice) is asked again, one sample per request, each with its own sample index (seed)."""
    want = req.params.n
    if want <= 1 or not comp.ok or len(comp.texts) >= want:
        return comp
    one_each = req.params.model_copy(update={"n": 1})
    have = len(comp.texts)
    more = await gather_or_cancel(
        one(dataclasses.replace(req, params=one_each, sample_index=req.sample_index + k)) for k in range(have, want)
    )
    for m in more:
        comp.retries += m.retries
        if not m.ok:
            return Completion(model=comp.model, error=m.error, retries=comp.retries, latency_s=comp.latency_s)
        comp.texts.append(m.text)
        comp.finish_reasons.append(m.finish_reason)
        comp.usage.completion_tokens += m.usage.completion_tokens
        comp.retries += 1  # each extra request is one the server counted
    return comp


def gave_up(model: str, retries: int, last_error: str, start: float) -> Completion:
    """The failed completion after the retry budget is spent."""
    return Completion(
        model=model,
        retries=retries,
        error=f"gave up after {retries} retries: {last_error}",
        latency_s=time.perf_counter() - start,
    )


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, dt.timestamp() - time.time())


def _sampling(p: SamplingParams, sample_index: int) -> dict[str, Any]:
    """The sampling fields of a request body (only those set: servers differ on extras)."""
    out: dict[str, Any] = {"temperature": p.temperature, "top_p": p.top_p, "max_tokens": p.max_tokens}
    if p.n != 1:
        out["n"] = p.n
    if p.top_k is not None:
        out["top_k"] = p.top_k
    if p.stop:
        out["stop"] = list(p.stop)
    if p.seed is not None:
        out["seed"] = p.seed + sample_index
    return out


def _response_format(body: dict[str, Any], req: ChatRequest, dialect: str) -> None:
    """Ask for JSON under the request's schema in the endpoint's dialect."""
    assert req.schema is not None
    if dialect == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": req.schema_name, "schema": req.schema, "strict": True},
        }
        return
    # a grammar from the schema (llama.cpp): bound its strings, each with room for a
    # sentence, and give the reply the tokens its longest JSON takes, so it closes
    bounded, chars = bounded_schema(req.schema, req.params.max_tokens)
    body["response_format"] = {"type": "json_object", "schema": bounded}
    body["max_tokens"] = max(req.params.max_tokens, chars + 16)


class OpenAIHTTPBackend:
    """Chat completions over HTTP with a per-endpoint concurrency cap, retries with
    exponential backoff and jitter, `Retry-After`, timeouts and AIMD throttling."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key_env: str | None = None,
        max_concurrency: int = 64,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        structured_output: bool | str = True,
        connect_retry_s: float = 8.0,
    ) -> None:
        from .urls import check_base_url

        try:
            check_base_url(base_url)
        except ValueError as e:
            raise ConfigError(f"base_url {e}") from None
        self.model_id = model
        self.base_url = base_url.rstrip("/")
        self._url = self.base_url + "/chat/completions"
        self.api_key_env = api_key_env
        self._api_key = os.environ.get(api_key_env) if api_key_env else None
        register_secret(self._api_key)
        if api_key_env and not self._api_key:
            log.warning("environment variable %s is not set; sending no API key", api_key_env)
        self.connect_retry_s = connect_retry_s
        self._served = False  # until one request succeeds, endpoint errors stop the stage
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.structured_output = structured_output
        if structured_output is True:
            structured_output = DIALECTS[0]
        elif structured_output is False:
            structured_output = "prompt"
        if structured_output not in DIALECTS:
            raise ValueError(f"structured_output must be true, false or one of {', '.join(DIALECTS)}")
        # per endpoint, moves down on refusal (see DIALECTS); a later backend for the same URL in
        # this process (the next stage) starts where an earlier one ended up
        learned = _LEARNED.get(self.base_url, {})
        self.dialect: str = max(structured_output, learned.get("dialect", DIALECTS[0]), key=DIALECTS.index)
        self._confirmed = False  # a JSON reply came in the current dialect: it is honoured
        self.switches: list[str] = []  # "json_schema -> json_object: why", for the summary
        self.token_prompts = learned.get("token_prompts", True)  # until refused: then the rendered text
        self.limiter = AIMDLimiter(max_concurrency)
        self._max_concurrency = max_concurrency
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"Content-Type": "application/json"}
        if self._api_key:
            self._headers["Authorization"] = f"Bearer {self._api_key}"

    def _redact(self, text: str) -> str:
        return mask_secrets(text)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_concurrency, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                json_serialize=lambda o: orjson.dumps(o).decode(),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=min(self.timeout_s, 10.0)),
            )
        return self._session

    def _payload(
        self, req: ChatRequest, dialect: str | None = None, token_prompt: bool | None = None
    ) -> dict[str, Any]:
        p = req.params
        dialect = dialect or self.dialect
        token_prompt = self.token_prompts if token_prompt is None else token_prompt
        messages = req.messages
        if req.schema is not None and dialect != "json_schema":
            messages = schema_messages(messages, req.schema)
        if req.prompt is not None:  # a raw prompt goes to the completions endpoint (trained simulators)
            prompt: list[int] | str = req.prompt if token_prompt or req.prompt_text is None else req.prompt_text
            head: dict[str, Any] = {"prompt": prompt}
        else:
            head = {"messages": messages}
        body: dict[str, Any] = {"model": self.model_id, **head, **_sampling(p, req.sample_index)}
        if req.tools:
            body["tools"] = req.tools
        if req.schema is not None and dialect in ("json_schema", "json_object"):
            _response_format(body, req, dialect)
        return body

    def body_for(self, req: ChatRequest) -> tuple[bytes, str, bool]:
        """The request body in this endpoint's current dialect, with the dialect and prompt
        form used (to tell later whether a refusal was of the dialect still in use)."""
        dialect, tokens = self.dialect, self.token_prompts
        return orjson.dumps(self._payload(req, dialect, tokens)), dialect, tokens

    # -- negotiation ---------------------------------------------------------------------
    def refused(self, req: ChatRequest, dialect: str, tokens: bool, err: _HTTPFailure) -> bool:
        """Whether `err` refuses how the request was sent (the structured-output field, or a
        token-id prompt); if so, move this endpoint on (once, logged once): resend at once."""
        if err.status is None or err.status in (*_PUSHBACK, 401, 403, 404, 408) or err.status < 400:
            return False
        if req.prompt is not None and tokens and req.prompt_text is not None:
            return self._refused_token_prompt(err)
        if req.schema is None or dialect == "prompt" or not any(w in err.body for w in _NAMES_THE_FIELD):
            return False
        self._move_on(dialect, f"the server refused it (HTTP {err.status}: {truncate_masked(err.body, 120)})")
        return True

    def _refused_token_prompt(self, err: _HTTPFailure) -> bool:
        """A token-id prompt refused (the error names the prompt, or a 5xx): send the rendered
        text from now on. A context overflow is the record's own failure, not a refusal."""
        if "context" in err.body:  # "Requested tokens (2100) exceed context window"
            return False
        names_it = "prompt" in err.body and any(w in err.body for w in _TOKEN_PROMPT_WORDS)
        if not (names_it or (err.status or 0) >= 500):
            return False
        if self.token_prompts:
            self.token_prompts = False
            _LEARNED.setdefault(self.base_url, {})["token_prompts"] = False
            log.warning(
                "%s/completions refused a token-id prompt (HTTP %s); sending the rendered text from now on",
                self.base_url,
                err.status,
            )
        return True

    def ignored(self, req: ChatRequest, dialect: str, comp: Completion) -> bool:
        """Whether a reply shows the server ignored the structured-output field (prose before
        any JSON reply came in this dialect); if so, move this endpoint on: resend at once."""
        if req.schema is None or dialect == "prompt" or not comp.texts:
            return False
        if looks_like_json(comp.text):
            if dialect == self.dialect:
                self._confirmed = True
            return False
        if dialect != self.dialect:
            return True  # sent before the move: resend in the dialect now in use
        if self._confirmed:
            return False  # the server honours it; this reply is the model's failure (repair)
        self._move_on(dialect, "the server ignored it (the reply was not JSON)")
        return True

    def _move_on(self, dialect: str, why: str) -> None:
        if dialect != self.dialect or dialect == DIALECTS[-1]:
            return  # another request moved it already
        self.dialect = DIALECTS[DIALECTS.index(dialect) + 1]
        _LEARNED.setdefault(self.base_url, {})["dialect"] = self.dialect
        self._confirmed = False
        self.switches.append(f"{dialect} -> {self.dialect}: {why}")
        how = {
            "json_object": "response_format json_object with the schema",
            "prompt": "plain text with the schema in the prompt (parsed, repaired and validated)",
        }[self.dialect]
        log.warning("%s: structured output as %s: %s; using %s from now on", self.base_url, dialect, why, how)

    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        if len(requests) == 1:
            return [await self._sampled(requests[0])]
        # the endpoint is unusable (or we were cancelled): the siblings stop too
        return await gather_or_cancel(self._sampled(r) for r in requests)

    async def _sampled(self, req: ChatRequest) -> Completion:
        return await all_samples(self._one, req, await self._one(req))

    def _give_up(self, e: _Retryable, retries: int, start: float, error: str) -> bool:
        """Whether a retryable failure has used up its retries. A server unreachable before it
        ever answered is a config problem: BackendUnavailable once `connect_retry_s` passed."""
        if isinstance(e, _Unreachable) and not self._served:
            if time.perf_counter() - start >= self.connect_retry_s:
                raise BackendUnavailable(error) from None
            return False
        return retries >= self.max_retries

    def _retry_delay(self, e: _Retryable, retries: int, start: float) -> float:
        delay = backoff_delay(retries, self.backoff_base_s, self.backoff_max_s, e.retry_after)
        if isinstance(e, _Unreachable) and not self._served:  # keep trying a dead server within connect_retry_s
            delay = min(delay, 1.0, max(0.0, start + self.connect_retry_s - time.perf_counter()))
        return delay

    async def _one(self, req: ChatRequest) -> Completion:
        url = self.url_for(req)
        session = self._get_session()
        start = time.perf_counter()
        retries = 0
        last_error = ""
        extra = Usage()  # tokens of replies dropped because the server ignored the schema
        while True:
            body, dialect, tokens = self.body_for(req)
            ticket = await self.limiter.acquire()
            t_sent = time.perf_counter()
            try:
                comp = await self._attempt(session, body, url)
            except _Retryable as e:
                self.limiter.release()
                if self.refused(req, dialect, tokens, e):
                    retries += 1  # the server saw it: counted, but not against the budget
                    continue
                last_error = self._redact(str(e))
                if e.pushback:
                    self.limiter.on_pushback(ticket)
                elif e.overload:
                    self.limiter.on_overload(ticket)
                if self._give_up(e, retries, start, last_error):
                    break
                delay = self._retry_delay(e, retries, start)
                retries += 1
                log.debug("retry %d after %.2fs: %s", retries, delay, last_error)
                await asyncio.sleep(delay)
                continue
            except _Fatal as e:
                self.limiter.release()
                if self.refused(req, dialect, tokens, e):
                    retries += 1
                    continue
                if isinstance(e, _EndpointFatal) and not self._served:
                    raise BackendUnavailable(self._redact(str(e))) from None
                return Completion(
                    model=self.model_id,
                    error=self._redact(str(e)),
                    retries=retries,
                    latency_s=time.perf_counter() - start,
                )
            self.limiter.release()
            self.limiter.on_success(ticket, time.perf_counter() - t_sent, self.timeout_s)
            self._served = True
            if self.ignored(req, dialect, comp):
                extra.prompt_tokens += comp.usage.prompt_tokens
                extra.completion_tokens += comp.usage.completion_tokens
                retries += 1
                continue
            comp.usage.prompt_tokens += extra.prompt_tokens
            comp.usage.completion_tokens += extra.completion_tokens
            comp.retries = retries
            comp.latency_s = time.perf_counter() - start
            return comp
        return gave_up(self.model_id, retries, last_error, start)

    def url_for(self, req: ChatRequest) -> str:
        """A raw prompt (token ids or text) goes to the completions endpoint (trained simulators)."""
        return self.base_url + "/completions" if req.prompt is not None else self._url

    def _unreachable(self, e: aiohttp.ClientError) -> _Unreachable:
        """One line naming the URL and what failed: refused, DNS, TLS, or another transport error."""
        url = self._url
        if isinstance(e, aiohttp.ClientConnectorDNSError):
            return _Unreachable(f"{url}: cannot resolve host {e.host!r} (DNS: {e.os_error.strerror or e.os_error})")
        if isinstance(e, aiohttp.ClientConnectorCertificateError):
            return _Unreachable(f"{url}: TLS certificate rejected ({e.certificate_error})")
        if isinstance(e, aiohttp.ClientSSLError):
            return _Unreachable(f"{url}: TLS handshake failed ({e})")
        if isinstance(e, aiohttp.ClientConnectorError):
            err = e.os_error
            why = os.strerror(err.errno) if err.errno else (err.strerror or str(err))
            return _Unreachable(f"{url}: cannot connect ({why}); is the server running, is the URL right?")
        return _Unreachable(f"{url}: connection error: {type(e).__name__}: {e}")

    def _http_error(self, status: int, raw: bytes, retry_after: str | None) -> _HTTPFailure:
        err = self._http_error_kind(status, raw, retry_after)
        err.status = status
        err.body = mask_secrets(raw[:4000].decode("utf-8", "replace")).lower()
        return err

    def _http_error_kind(self, status: int, raw: bytes, retry_after: str | None) -> _HTTPFailure:
        # mask the whole body first, then cut: a cut must never leave part of a key behind
        snippet = truncate_masked(raw.decode("utf-8", "replace"), 200)
        if status in _PUSHBACK:
            return _Retryable(f"HTTP {status}: {snippet}", _parse_retry_after(retry_after), pushback=True)
        if status >= 500 or status == 408:
            return _Retryable(f"HTTP {status}: {snippet}")
        if status in (401, 403):
            if self.api_key_env and self._api_key:
                hint = f"the server refused the API key in ${self.api_key_env}"
            elif self.api_key_env:
                hint = f"no API key sent: ${self.api_key_env} is not set"
            else:
                hint = "no API key sent: name the variable that holds it with --api-key-env (api_key_env)"
            return _EndpointFatal(f"{self._url}: HTTP {status}: {hint}: {snippet}")
        if status == 404:
            return _EndpointFatal(
                f"{self._url}: HTTP 404: model {self.model_id!r} not found, or no chat completions endpoint "
                f"at this URL (base URLs usually end in /v1): {snippet}"
            )
        return _Fatal(f"HTTP {status}: {snippet}")

    async def _attempt(self, session: aiohttp.ClientSession, body: bytes, url: str | None = None) -> Completion:
        try:
            async with session.post(url or self._url, data=body) as resp:
                raw = await resp.read()
                status = resp.status
                if status != 200:
                    raise self._http_error(status, raw, resp.headers.get("Retry-After"))
        except aiohttp.ConnectionTimeoutError:  # no TCP connection at all (a host that drops packets)
            raise _Unreachable(f"{self._url}: cannot connect (timed out connecting)") from None
        except asyncio.TimeoutError:
            raise _Retryable(f"{self._url}: timeout after {self.timeout_s}s", overload=True) from None
        except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError) as e:
            raise self._unreachable(e) from None
        except aiohttp.ClientError as e:
            down = isinstance(e, aiohttp.ClientOSError | aiohttp.ServerDisconnectedError)
            raise _Retryable(
                f"{self._url}: connection error: {type(e).__name__}: {e}", down=down, overload=down
            ) from None
        return self._completion(raw)

    def _completion(self, raw: bytes) -> Completion:
        """A 200 response body as a completion; a malformed one is retryable."""
        try:
            data = orjson.loads(raw)
            choices = data["choices"]
            texts = [mask_secrets((c["message"]["content"] if "message" in c else c["text"]) or "") for c in choices]
            reasons = [c.get("finish_reason") or "stop" for c in choices]
            calls = list((choices[0].get("message") or {}).get("tool_calls") or []) if choices else []
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError, AttributeError) as e:
            raise _Retryable(
                f"malformed response body ({type(e).__name__}: {e}): "
                + truncate_masked(raw.decode("utf-8", "replace"), 120)
            ) from None
        if not choices:
            raise _Retryable("response has no choices")
        u = data.get("usage") or {}
        return Completion(
            texts=texts,
            finish_reasons=reasons,
            model=self.model_id,
            usage=Usage(u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0),
            tool_calls=calls,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
