"""`LLM`: a backend plus the call cache, usage accounting and validated structured output."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from .cache import CallCache, request_key
from .structured import parse_structured, strict_schema
from .types import DEFAULT_PARAMS, ChatModel, ChatRequest, Completion, SamplingParams
from .usage import UsageTracker

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

_REPAIR = (
    "Your previous reply could not be used: {error}. Reply again with only one JSON "
    "object that matches this schema, and nothing else:\n{schema}"
)


@dataclass
class StructuredResult(Generic[T]):
    """A parsed value, or `error` with every raw reply kept for the record."""

    value: T | None
    raw: list[str] = field(default_factory=list)
    error: str | None = None
    completions: list[Completion] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.value is not None


class LLM:
    """What stages call. Cache hits never reach the backend; usage is counted per stage."""

    def __init__(
        self,
        backend: ChatModel,
        *,
        cache: CallCache | None = None,
        usage: UsageTracker | None = None,
        stage: str = "default",
        params: SamplingParams = DEFAULT_PARAMS,
        system_prompt: str | None = None,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.usage = usage if usage is not None else UsageTracker()
        self.stage = stage
        self.params = params
        self.system_prompt = system_prompt
        self._inflight: dict[str, asyncio.Future[Completion]] = {}

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def for_stage(self, stage: str) -> LLM:
        other = LLM(
            self.backend,
            cache=self.cache,
            usage=self.usage,
            stage=stage,
            params=self.params,
            system_prompt=self.system_prompt,
        )
        other._inflight = self._inflight
        return other

    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Answers in order. With a cache, an identical request already in flight is awaited,
        not sent twice (single flight), and counts as a cache hit."""
        out: list[Completion | None] = [None] * len(requests)
        keys, missing, waiting = self._lookup(requests, out)
        if missing:
            await self._send(requests, missing, keys, out)
        for i, fut in waiting:
            comp = await fut
            shared = Completion(
                texts=comp.texts,
                finish_reasons=comp.finish_reasons,
                usage=comp.usage,
                model=comp.model,
                cached=True,
                error=comp.error,
            )
            out[i] = shared
            self.usage.record(self.stage, shared)
        return out  # type: ignore[return-value]

    def _lookup(
        self, requests: Sequence[ChatRequest], out: list[Completion | None]
    ) -> tuple[list[str], list[int], list[tuple[int, asyncio.Future[Completion]]]]:
        """Fill cache hits into `out`; (cache keys, indices to send, indices to await from a
        request in flight). Each index to send gets a future its twins can await."""
        keys: list[str] = []
        missing: list[int] = []
        waiting: list[tuple[int, asyncio.Future[Completion]]] = []
        for i, req in enumerate(requests):
            if self.cache is None:
                missing.append(i)
                continue
            key = request_key(self.model_id, req)
            keys.append(key)
            hit = self.cache.get(key)
            if hit is not None:
                out[i] = hit
                self.usage.record(self.stage, hit)
            elif key in self._inflight:
                waiting.append((i, self._inflight[key]))
            else:
                self._inflight[key] = asyncio.get_running_loop().create_future()
                missing.append(i)
        return keys, missing, waiting

    async def _send(
        self, requests: Sequence[ChatRequest], missing: list[int], keys: list[str], out: list[Completion | None]
    ) -> None:
        """Send the missing requests; record usage and cache each answer (one transaction when
        the cache is the usage ledger) and hand it to the requests waiting on it."""
        try:
            comps = await self.backend.chat([requests[i] for i in missing])
        except BaseException as e:
            for i in missing:
                fut = self._inflight.pop(keys[i], None) if self.cache is not None else None
                if fut is not None and not fut.done():
                    fut.set_exception(e)
                    fut.exception()  # mark retrieved
            raise
        for i, comp in zip(missing, comps, strict=True):
            out[i] = comp
            if self.cache is None:
                self.usage.record(self.stage, comp)
                continue
            if self.usage.ledger is self.cache:
                self.usage.record(self.stage, comp, cache_key=keys[i])  # one transaction
            else:
                self.usage.record(self.stage, comp)
                self.cache.put(keys[i], comp)
            fut = self._inflight.pop(keys[i])
            if not fut.done():
                fut.set_result(comp)

    def _messages(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        if self.system_prompt and (not messages or messages[0]["role"] != "system"):
            return [{"role": "system", "content": self.system_prompt}, *messages]
        return messages

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        prompt: list[int] | None = None,
    ) -> Completion:
        """`prompt`: token ids sent as they are (no chat template, no system prompt added); a
        `TokenPrompt` also carries its rendered text, sent instead where a server takes only a
        string prompt (llama-cpp-python)."""
        msgs = messages if prompt is not None else self._messages(messages)
        text = getattr(prompt, "text", None)
        req = ChatRequest(msgs, params or self.params, sample_index=sample_index, prompt=prompt, prompt_text=text)
        return (await self.chat([req]))[0]

    async def structured(
        self,
        messages: list[dict[str, str]],
        model: type[T],
        *,
        params: SamplingParams | None = None,
        sample_index: int = 0,
        repair: bool = True,
    ) -> StructuredResult[T]:
        """Ask for JSON matching `model`; validate; one repair attempt (the model sees its
        reply and the error); then a typed failure with every raw reply kept."""
        schema = strict_schema(model)
        msgs = self._messages(messages)
        p = params or self.params
        result: StructuredResult[T] = StructuredResult(value=None)
        for attempt in range(2 if repair else 1):
            if attempt:
                msgs = msgs + [
                    {"role": "assistant", "content": result.raw[-1]},
                    {"role": "user", "content": _REPAIR.format(error=result.error, schema=json.dumps(schema))},
                ]
            req = ChatRequest(msgs, p, schema=schema, schema_name=model.__name__, sample_index=sample_index)
            comp = (await self.chat([req]))[0]
            result.completions.append(comp)
            if not comp.ok:
                result.error = f"{'repair request' if attempt else 'request'} failed: {comp.error}"
                return result
            result.raw.append(comp.text)
            try:
                result.value = parse_structured(comp.text, model)
                result.error = None
                return result
            except ValueError as e:
                result.error = f"invalid after one repair attempt: {e}" if attempt else str(e)
        return result

    async def aclose(self) -> None:
        await self.backend.aclose()


def run_sync(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine from sync code (the CLI and the sync Python API). Inside a running
    event loop (a notebook cell) it runs in a worker thread with its own loop, because a
    loop cannot block on itself."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dialforge-sync") as pool:
        return pool.submit(asyncio.run, coro).result()
