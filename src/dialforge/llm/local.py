"""In-process transformers backend: the embedded default, no server needed.

Concurrent `chat` calls are gathered into batches (up to `batch_size` rows) by one worker
task, so an engine with many live conversations gets batched generation for free.
Structured output uses xgrammar's logits processor, so even a tiny random model emits
JSON that parses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..errors import BackendUnavailable, DialforgeError
from .structured import bound_schema, bounded_schema
from .types import ChatRequest, Completion, SamplingParams, Usage

log = logging.getLogger("dialforge.llm")


def json_token_limit(schema: dict[str, Any], max_tokens: int) -> int:
    """The generation limit of a constrained (JSON) request: the most characters the bounded
    schema's JSON can take (at least `max_tokens`; every string has room for a sentence), twice
    over plus a little for multi-token characters, so the JSON closes. Was 4x `max_tokens`:
    a batch waits for its slowest row, and a rambling row took all of it."""
    return 2 * bounded_schema(schema, max_tokens)[1] + 16


def set_cpu_threads(threads: int | None) -> None:
    """Torch's intra-op threads on CPU: `threads`, else 1. Measured on SmolLM2-135M (issue 23,
    2 busy cores): one thread decoded 14 tok/s at batch 1 and 50 at batch 32, two threads 2.3
    and 11 (oversubscription with the other processes on the machine)."""
    import torch

    n = threads or 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
        log.debug("torch threads on CPU: %d", n)


def _cancelled(flag: threading.Event) -> Any:
    """A transformers StoppingCriteria: stop every row once `flag` is set (the backend closed
    or the batch's task cancelled: Ctrl-C then waits one token, not the whole batch)."""
    import torch
    from transformers import StoppingCriteria

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), flag.is_set(), dtype=torch.bool, device=input_ids.device)

    return Cancelled()


DEFAULT_BATCH_SIZE = 32
"""Rows per generate call. Measured on the tiny model, 128 requests of 32 new tokens, 2 CPU
cores at load 6-7 (docs/benchmarks.md, issue 18): 32 was the fastest in both orders (24.0 and
27.7 s; 16: 49.1 and 28.7 s; 64: 36.5 and 47.2 s). Larger models on a GPU want more: set
`batch_size` in the backend config."""


class TransformersBackend:
    def __init__(
        self,
        model: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str | None = None,
        dtype: str = "auto",
        name: str | None = None,
        threads: int | None = None,
    ) -> None:
        # `model` is what to load (a folder or hub id); `name` what records say (an embedded
        # model's name, never its cache path: exports and manifests hold no local paths)
        self.model_id = name or model
        self._path = model
        self.batch_size = batch_size
        self.threads = threads
        self._live: set[threading.Event] = set()  # one per batch generating; set: it stops at the next token
        self._device = device
        self._dtype = dtype
        self._model: Any = None
        self._tok: Any = None
        self._grammars: dict[str, Any] = {}
        self._compiler: Any = None
        self._queue: asyncio.Queue[tuple[ChatRequest, asyncio.Future[Completion]]] | None = None
        self._worker: asyncio.Task[None] | None = None

    # -- loading -----------------------------------------------------------------
    def load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..quiet import no_loading_bars

        try:
            self._tok = AutoTokenizer.from_pretrained(self._path)
            with no_loading_bars():
                self._model = AutoModelForCausalLM.from_pretrained(self._path, dtype=self._dtype)
        except (OSError, ValueError) as e:
            raise BackendUnavailable(f"cannot load model {self.model_id!r}: {str(e).splitlines()[0]}") from None
        device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device == "cpu":
            set_cpu_threads(self.threads)
        self._model.to(device).eval()
        self._tok.padding_side = "left"
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        if not getattr(self._tok, "chat_template", None):
            raise DialforgeError(f"model {self.model_id!r} has no chat template")

    def _grammar(self, schema: dict[str, Any], max_tokens: int) -> Any:
        key = json.dumps(bound_schema(schema, max_tokens), sort_keys=True)  # each string >= STRING_FLOOR
        if key not in self._grammars:
            import xgrammar as xgr

            if self._compiler is None:
                info = xgr.TokenizerInfo.from_huggingface(self._tok, vocab_size=self._model.config.vocab_size)
                self._compiler = xgr.GrammarCompiler(info)
            self._grammars[key] = self._compiler.compile_json_schema(key, any_whitespace=False)
        return self._grammars[key]

    # -- batching ----------------------------------------------------------------
    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run())
        loop = asyncio.get_running_loop()
        futs = []
        for r in requests:
            fut: asyncio.Future[Completion] = loop.create_future()
            self._queue.put_nowait((r, fut))
            futs.append(fut)
        return list(await asyncio.gather(*futs))

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            await asyncio.sleep(0)  # let concurrent callers enqueue before we cut a batch
            batch = [item]
            while not self._queue.empty() and len(batch) < self.batch_size:
                batch.append(self._queue.get_nowait())
            groups: dict[tuple[Any, ...], list[tuple[ChatRequest, asyncio.Future[Completion]]]] = {}
            for req, fut in batch:
                key = (req.params, json.dumps(req.schema, sort_keys=True) if req.schema else None)
                groups.setdefault(key, []).append((req, fut))
            for group in groups.values():
                try:
                    comps = await self._generate_isolated([r for r, _ in group])
                except BackendUnavailable as e:
                    for _, fut in group:
                        if not fut.done():
                            fut.set_exception(e)
                    continue
                for (_, fut), comp in zip(group, comps, strict=True):
                    if not fut.done():
                        fut.set_result(comp)

    async def _generate_isolated(self, reqs: list[ChatRequest]) -> list[Completion]:
        """One failing request fails itself, never its batch: a failed batch is retried
        request by request."""
        try:
            return await self._generate_cancellable(reqs)
        except BackendUnavailable:  # the model cannot load: every request would fail alike
            raise
        except Exception as e:  # one bad batch must not kill the worker
            if len(reqs) == 1:
                log.warning("local generation failed: %s: %s", type(e).__name__, e)
                return [Completion(model=self.model_id, error=f"{type(e).__name__}: {e}")]
        out: list[Completion] = []
        for r in reqs:
            out.extend(await self._generate_isolated([r]))
        return out

    def _prompt_ids(self, req: ChatRequest) -> list[int]:
        if req.prompt is not None:
            return list(req.prompt)
        text = self._tok.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False)
        return list(self._tok(text, add_special_tokens=False)["input_ids"])

    # -- generation --------------------------------------------------------------
    async def _generate_cancellable(self, reqs: list[ChatRequest]) -> list[Completion]:
        """`_generate` in a thread; cancelling (Ctrl-C, aclose) stops it at its next token
        instead of waiting for the whole batch."""
        flag = threading.Event()
        self._live.add(flag)
        try:
            return await asyncio.to_thread(self._generate, reqs, flag)
        except asyncio.CancelledError:
            flag.set()
            raise
        finally:
            self._live.discard(flag)

    def _generate(self, reqs: list[ChatRequest], cancel: threading.Event | None = None) -> list[Completion]:
        import torch
        from transformers import StoppingCriteriaList

        self.load()
        tok, model = self._tok, self._model
        p: SamplingParams = reqs[0].params
        start = time.perf_counter()
        rows = [self._prompt_ids(r) for r in reqs for _ in range(p.n)]
        enc = tok.pad({"input_ids": rows}, return_tensors="pt", padding=True).to(model.device)
        kwargs: dict[str, Any] = {"max_new_tokens": p.max_tokens, "pad_token_id": tok.pad_token_id}
        if p.temperature > 0:
            kwargs.update(do_sample=True, temperature=p.temperature, top_p=p.top_p, top_k=p.top_k or 0)
        else:
            kwargs.update(do_sample=False)
        if reqs[0].schema is not None:
            import xgrammar as xgr

            g = self._grammar(reqs[0].schema, p.max_tokens)
            kwargs["max_new_tokens"] = json_token_limit(reqs[0].schema, p.max_tokens)
            kwargs["logits_processor"] = [xgr.contrib.hf.LogitsProcessor([g] * len(rows))]
        if cancel is not None:
            kwargs["stopping_criteria"] = StoppingCriteriaList([_cancelled(cancel)])
        if p.seed is not None:
            torch.manual_seed(p.seed + reqs[0].sample_index)
        with torch.no_grad():
            out = model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        elapsed = time.perf_counter() - start
        eos = tok.eos_token_id
        comps = []
        for i in range(len(reqs)):
            texts, reasons, ptoks, ctoks = [], [], 0, 0
            for j in range(p.n):
                row = new[i * p.n + j].tolist()
                n_gen = len(row)
                reason = "length"
                for k, t in enumerate(row):
                    if t == eos or t == tok.pad_token_id:
                        n_gen, reason = k + (t == eos), "stop"
                        break
                text = tok.decode(row[:n_gen], skip_special_tokens=True)
                for s in p.stop:
                    cut = text.find(s)
                    if cut >= 0:
                        text, reason = text[:cut], "stop"
                texts.append(text)
                reasons.append(reason)
                ptoks += int(prompt_lens[i * p.n + j])
                ctoks += n_gen
            comps.append(
                Completion(
                    texts=texts,
                    finish_reasons=reasons,
                    model=self.model_id,
                    usage=Usage(ptoks // p.n, ctoks),
                    latency_s=elapsed,
                )
            )
        return comps

    async def aclose(self) -> None:
        for flag in list(self._live):
            flag.set()
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):
                pass
            self._worker = None
            self._queue = None
