"""Test doubles that are real enough to trust: a scripted backend and a loopback
OpenAI-compatible server with fault injection. Public so users can test their own configs.

Run the server on its own for benchmarks: `python -m dialforge.testing --port 8000 --delay 0.05`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from .llm.types import ChatRequest, Completion, Usage
from .tiny import build_tiny_model

Reply = Callable[[ChatRequest], "str | Completion"]


EXAMPLE_TEXT = "synthetic example text"
"""The string `example_for_schema` gives (several words: a one-word 'strategy' is degenerate),
repeated up to a schema's minLength."""


def example_for_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A minimal value that validates against a (simple) JSON schema."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return example_for_schema(defs[schema["$ref"].split("/")[-1]], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return example_for_schema(schema["anyOf"][0], defs)
    t = schema.get("type")
    if t == "object":
        return {k: example_for_schema(v, defs) for k, v in schema.get("properties", {}).items()}
    if t == "array":
        return [example_for_schema(schema.get("items", {}), defs)] * schema.get("minItems", 0)
    if t == "integer":
        return max(1, schema.get("minimum", 1))
    if t == "number":
        return float(schema.get("minimum", 1))
    if t == "boolean":
        return True
    if t == "null":
        return None
    text = EXAMPLE_TEXT
    while len(text) < schema.get("minLength", 0):
        text += " " + EXAMPLE_TEXT
    return text


def _words(text: str) -> int:
    return len(text.split())


class ScriptedChatModel:
    """A backend that answers from a script: a list of replies (used in order) or a function
    of the request. Structured requests without a scripted reply get a minimal valid object."""

    def __init__(self, replies: Sequence[str | Completion] | Reply | None = None, model_id: str = "scripted") -> None:
        self.model_id = model_id
        self.requests: list[ChatRequest] = []
        self._fn: Reply | None = replies if callable(replies) else None
        self._queue: deque[str | Completion] = deque(replies if isinstance(replies, Sequence) else [])

    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        out = []
        for req in requests:
            self.requests.append(req)
            if self._fn is not None:
                r: str | Completion = self._fn(req)
            elif self._queue:
                r = self._queue.popleft()
            elif req.schema is not None:
                r = orjson.dumps(example_for_schema(req.schema)).decode()
            else:
                r = Completion(model=self.model_id, error="script exhausted")
            if isinstance(r, str):
                prompt = sum(_words(m["content"]) for m in req.messages)
                r = Completion(
                    texts=[r] * req.params.n,
                    finish_reasons=["stop"] * req.params.n,
                    model=self.model_id,
                    usage=Usage(prompt, _words(r) * req.params.n),
                )
            r.model = self.model_id
            out.append(r)
        return out

    async def aclose(self) -> None:
        return None


def response_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request asks for: `response_format` of type `json_schema`, or of
    type `json_object` with a `schema` (llama-cpp-python's form); None for plain text."""
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return rf["json_schema"]["schema"]  # type: ignore[no-any-return]
    if rf.get("type") == "json_object" and isinstance(rf.get("schema"), dict):
        return rf["schema"]  # type: ignore[no-any-return]
    return None


def _default_reply(body: dict[str, Any]) -> str:
    schema = response_schema(body)
    if schema is not None:
        return orjson.dumps(example_for_schema(schema)).decode()
    last = body["messages"][-1]["content"] if body.get("messages") else ""
    return f"echo: {last[:200]}"


def _error_response(kind: str, kw: dict[str, Any], body: dict[str, Any], auth: str) -> Any:
    from aiohttp import web

    if kind == "401":
        return web.json_response({"error": {"message": "Incorrect API key provided", "code": 401}}, status=401)
    if kind == "404":
        msg = f"The model `{body.get('model')}` does not exist."
        return web.json_response({"error": {"message": msg, "code": 404}}, status=404)
    key = auth.removeprefix("Bearer ")
    length, offset = kw.get("length", 400), kw.get("offset", 0)
    filler = "".join(chr(ord("a") + i % 26) for i in range(length))
    text = (filler[:offset] + key + filler[offset:])[: max(length, offset + len(key))]
    return web.Response(status=kw.get("status", 500), text=text)


class FakeOpenAIServer:
    """An OpenAI-compatible `/v1/chat/completions` (and raw `/v1/completions`) server on 127.0.0.1 (random port) in a
    background thread. Replies come from `reply(body) -> str`; faults are injected on demand:

    - `inject("500", times)`         HTTP 500
    - `inject("429", times, retry_after=s)` HTTP 429 with Retry-After
    - `inject("hang", times, seconds=s)`    no answer for `s` seconds
    - `inject("malformed", times)`   a body that is not JSON
    - `inject("bad_json", times)`    a 200 whose content is not the requested JSON
    - `inject("401", times)` / `inject("404", times)`  auth refused / model not found
    - `inject("echo_key", times, status=500, offset=k, length=n)`  an error body of n characters
      with the request's bearer key written at character k (a server that leaks the key)
    - `capacity=k`                   answer 429 while more than k requests are in flight
    - `fault_rates={"429": 0.05}`    that fault on a random share of requests (seeded), on
      top of the injected ones ("429", "500", "hang", "malformed", "bad_json")
    - `serial=True`                  answer one request at a time, the rest wait in line
      (llama-cpp-python's server)

    Servers differ in what they take, and these emulate them:
    - `response_formats=("json_object",)`  the `response_format` types accepted; another is
      answered `refuse_status` (500, as llama-cpp-python does) with a body that names it
    - `ignore_response_format=True`  accepts the field and ignores it (the reply function
      sees the body without it)
    - `token_prompts=False`          `/v1/completions` with token ids is HTTP 500 (a string only)
    - `ignore_n=True`                one choice whatever `n` asks (llama-cpp-python)

    Tool calls: `reply` may return a dict, the assistant message itself (`{"content": ...,
    "tool_calls": [...]}`), answered with `finish_reason` `tool_calls` when it calls any.
    """

    def __init__(
        self,
        reply: Callable[[dict[str, Any]], Any] | None = None,
        *,
        delay_s: float = 0.0,
        capacity: int | None = None,
        port: int = 0,
        record: bool = True,
        fault_rates: dict[str, float] | None = None,
        serial: bool = False,
        response_formats: Sequence[str] | None = None,
        refuse_status: int = 500,
        ignore_response_format: bool = False,
        token_prompts: bool = True,
        ignore_n: bool = False,
        seed: int = 0,
    ) -> None:
        import random

        self.reply = reply or _default_reply
        self.delay_s = delay_s
        self.capacity = capacity
        self.fault_rates = dict(fault_rates or {})
        for kind in self.fault_rates:
            if kind not in ("500", "429", "hang", "malformed", "bad_json"):
                raise ValueError(f"unknown fault rate {kind!r}")
        self.serial = serial
        self.response_formats = tuple(response_formats) if response_formats is not None else None
        self.refuse_status = refuse_status
        self.ignore_response_format = ignore_response_format
        self.token_prompts = token_prompts
        self.ignore_n = ignore_n
        self.refused = 0  # requests answered with an error because of a field or prompt form
        self._rng = random.Random(seed)
        self._line: asyncio.Lock | None = None
        self.port = port
        self.record = record
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []  # each request's path: /v1/chat/completions or /v1/completions
        self.in_flight = 0
        self.max_in_flight = 0
        self.served = 0
        self._faults: deque[tuple[str, dict[str, Any]]] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._ids = itertools.count()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def inject(self, kind: str, times: int = 1, **kw: Any) -> None:
        if kind not in ("500", "429", "hang", "malformed", "bad_json", "401", "404", "echo_key"):
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.extend([(kind, kw)] * times)

    def _next_fault(self) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        for kind, rate in self.fault_rates.items():
            if self._rng.random() < rate:
                return kind, {}
        return None

    def _refusal(self, body: dict[str, Any]) -> Any:
        """The error a server gives for a field or prompt form it does not take, or None."""
        from aiohttp import web

        rf = body.get("response_format")
        if rf and self.response_formats is not None and rf.get("type") not in self.response_formats:
            self.refused += 1
            detail = {"loc": ["body", "response_format", "type"], "msg": f"unsupported: {rf.get('type')!r}"}
            return web.json_response({"error": {"message": str(detail)}}, status=self.refuse_status)
        if isinstance(body.get("prompt"), list) and not self.token_prompts:
            self.refused += 1
            return web.Response(status=500, text="Internal Server Error: prompt must be a string")
        return None

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = orjson.loads(await request.read())
        if self.record:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self.paths.append(request.path)
        if not self.serial:
            return await self._answer(body, request)
        if self._line is None:
            self._line = asyncio.Lock()
        async with self._line:  # one at a time; a client that gave up is not answered
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499, text="client closed request")
            return await self._answer(body, request)

    async def _answer(self, body: dict[str, Any], request: Any) -> Any:
        from aiohttp import web

        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.capacity is not None and self.in_flight > self.capacity:
                return web.Response(status=429, text="over capacity", headers={"Retry-After": "0"})
            refusal = self._refusal(body)
            if refusal is not None:
                return refusal
            if self.ignore_response_format:
                body = {k: v for k, v in body.items() if k != "response_format"}
            fault = self._next_fault()
            if fault is not None:
                failed = await self._fault_response(fault, body, request.headers.get("Authorization", ""))
                if failed is not None:
                    return failed
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            content = "this is not JSON" if fault and fault[0] == "bad_json" else self.reply(body)
            self.served += 1
            return web.Response(body=orjson.dumps(self._completion(body, content)), content_type="application/json")
        finally:
            self.in_flight -= 1

    @staticmethod
    async def _fault_response(fault: tuple[str, dict[str, Any]], body: dict[str, Any], auth: str) -> Any:
        """The response an injected fault gives, or None to answer normally (after a hang,
        or with `bad_json` content)."""
        from aiohttp import web

        kind, kw = fault
        if kind == "hang":
            await asyncio.sleep(kw.get("seconds", 30))
            return None
        if kind == "500":
            return web.Response(status=500, text="injected server error")
        if kind == "429":
            return web.Response(status=429, text="slow down", headers={"Retry-After": str(kw.get("retry_after", 0))})
        if kind in ("401", "404", "echo_key"):
            return _error_response(kind, kw, body, auth)
        if kind == "malformed":
            return web.Response(status=200, body=b"{not json", content_type="application/json")
        return None

    def _completion(self, body: dict[str, Any], content: Any) -> dict[str, Any]:
        """A chat completion, or a text completion for a raw (text or token-id) prompt; a dict
        `content` is the assistant message (with `tool_calls`)."""
        if isinstance(content, dict):
            message = {"role": "assistant", "content": content.get("content"), **content}
            calls = bool(message.get("tool_calls"))
            out = self._completion(body, message.get("content") or "")
            out["choices"] = [
                {"index": i, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
                for i in range(body.get("n", 1))
            ]
            return out
        n = 1 if self.ignore_n else body.get("n", 1)
        raw = "messages" not in body  # /v1/completions
        if raw:
            p = body.get("prompt")
            prompt_tokens = len(p) if isinstance(p, list) else _words(str(p or ""))
            choices = [{"index": i, "text": content, "finish_reason": "stop"} for i in range(n)]
        else:
            prompt_tokens = sum(_words(m.get("content") or "") for m in body.get("messages", []))
            message = {"role": "assistant", "content": content}
            choices = [{"index": i, "message": message, "finish_reason": "stop"} for i in range(n)]
        return {
            "id": f"{'cmpl' if raw else 'chatcmpl'}-{next(self._ids)}",
            "object": "text_completion" if raw else "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": _words(content) * n,
                "total_tokens": prompt_tokens + _words(content) * n,
            },
        }

    async def _serve(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/v1/completions", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        site = web.SockSite(runner, sock, backlog=4096)
        await site.start()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def start(self) -> FakeOpenAIServer:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve())

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake server did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(10)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description="Run the fake OpenAI-compatible server")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    ap.add_argument("--unique", action="store_true", help="answer every request with fresh random text")
    ap.add_argument("--capacity", type=int, default=None, help="answer 429 above this many requests in flight")
    ap.add_argument("--rate-429", type=float, default=0.0, help="answer this share of requests 429 (Retry-After 0)")
    ap.add_argument("--serial", action="store_true", help="answer one request at a time")
    args = ap.parse_args()
    reply = None
    if args.unique:
        import uuid

        def fresh(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: fresh(v) for k, v in value.items()}
            if isinstance(value, list):
                return [fresh(v) for v in value]
            return f"{uuid.uuid4().hex} {uuid.uuid4().hex}?" if value == "ok" else value

        def reply(body: dict[str, Any]) -> str:
            schema = response_schema(body)
            if schema is not None:  # valid JSON, fresh strings (strategy mode, judges)
                return orjson.dumps(fresh(example_for_schema(schema))).decode()
            return f"{uuid.uuid4().hex} {uuid.uuid4().hex}?"

    srv = FakeOpenAIServer(
        reply=reply,
        delay_s=args.delay,
        port=args.port,
        record=False,
        capacity=args.capacity,
        fault_rates={"429": args.rate_429} if args.rate_429 else None,
        serial=args.serial,
    )
    srv.start()
    print(f"serving on {srv.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


__all__ = ["FakeOpenAIServer", "ScriptedChatModel", "build_tiny_model", "example_for_schema", "response_schema"]

if __name__ == "__main__":
    main()
