"""The backend protocol and the request/response types every backend speaks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class SamplingParams(BaseModel):
    """Sampling for one request. `n` completions per request; `seed` makes servers repeatable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    max_tokens: int = Field(512, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = Field(1, ge=1)


DEFAULT_PARAMS = SamplingParams()


class TokenPrompt(list[int]):
    """Token ids that also carry the text they were rendered from: a trained simulator's
    prompt. A server whose completions endpoint takes only a string gets `text`."""

    def __init__(self, ids: Sequence[int] = (), text: str | None = None) -> None:
        super().__init__(ids)
        self.text = text


@dataclass(slots=True)
class ChatRequest:
    """One chat completion request. `schema` asks for structured (JSON) output. `prompt`
    (token ids) bypasses the chat template: the model continues exactly these ids (a trained
    simulator, rendered as in training); `messages` then only describe the request.
    `prompt_text` is the same prompt as text (the ids decoded), for a server whose
    completions endpoint takes only a string (llama-cpp-python's)."""

    messages: list[dict[str, str]]
    params: SamplingParams = DEFAULT_PARAMS
    schema: dict[str, Any] | None = None
    schema_name: str = "output"
    sample_index: int = 0
    prompt: list[int] | None = None
    prompt_text: str | None = None
    # OpenAI tools (function schemas) offered to the model; the reply may call them
    # (`Completion.tool_calls`). Messages may then carry `tool_calls` / `tool_call_id`.
    tools: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class Completion:
    """The answer to one request. A failed request has `error` set and no texts; never raises."""

    texts: list[str] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    latency_s: float = 0.0
    retries: int = 0
    cached: bool = False
    error: str | None = None
    # the first choice's tool calls, OpenAI's form: {id, type, function: {name, arguments}}
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.texts)

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""

    @property
    def finish_reason(self) -> str:
        return self.finish_reasons[0] if self.finish_reasons else ("error" if self.error else "")

    def to_cache(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "texts": self.texts,
            "finish_reasons": self.finish_reasons,
            "model": self.model,
            "usage": [self.usage.prompt_tokens, self.usage.completion_tokens],
        }
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        return out

    @classmethod
    def from_cache(cls, d: dict[str, Any]) -> Completion:
        p, c = d["usage"]
        return cls(
            texts=d["texts"],
            finish_reasons=d["finish_reasons"],
            model=d["model"],
            usage=Usage(p, c),
            cached=True,
            tool_calls=d.get("tool_calls") or [],
        )


@runtime_checkable
class ChatModel(Protocol):
    """A chat backend. `chat` answers every request in order and never raises for one
    bad request: the failure is in that request's `Completion.error`."""

    model_id: str

    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]: ...

    async def aclose(self) -> None: ...
