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
    return "ok"


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


def _default_reply(body: dict[str, Any]) -> str:
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return orjson.dumps(example_for_schema(rf["json_schema"]["schema"])).decode()
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
    """

    def __init__(
        self,
        reply: Callable[[dict[str, Any]], str] | None = None,
        *,
        delay_s: float = 0.0,
        capacity: int | None = None,
        port: int = 0,
        record: bool = True,
    ) -> None:
        self.reply = reply or _default_reply
        self.delay_s = delay_s
        self.capacity = capacity
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
            return self._faults.popleft() if self._faults else None

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = orjson.loads(await request.read())
        if self.record:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self.paths.append(request.path)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.capacity is not None and self.in_flight > self.capacity:
                return web.Response(status=429, text="over capacity", headers={"Retry-After": "0"})
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

    def _completion(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        """A chat completion, or a text completion for a raw (text or token-id) prompt."""
        n = body.get("n", 1)
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
            rf = body.get("response_format") or {}
            if rf.get("type") == "json_schema":  # valid JSON, fresh strings (strategy mode, judges)
                return orjson.dumps(fresh(example_for_schema(rf["json_schema"]["schema"]))).decode()
            return f"{uuid.uuid4().hex} {uuid.uuid4().hex}?"

    srv = FakeOpenAIServer(reply=reply, delay_s=args.delay, port=args.port, record=False, capacity=args.capacity)
    srv.start()
    print(f"serving on {srv.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


__all__ = ["FakeOpenAIServer", "ScriptedChatModel", "build_tiny_model", "example_for_schema"]

if __name__ == "__main__":
    main()
