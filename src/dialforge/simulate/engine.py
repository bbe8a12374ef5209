"""The self-play engine: many conversations alive at once, one turn = one request to the
user simulator or the assistant; every conversation records why it ended.

Resume: a conversation is appended to `conversations.jsonl` when it ends, under an id that
is a hash of what determines it (mode, config, seed, sample index). A killed run started
again skips finished conversations and replays unfinished ones from the call cache.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ..conversation import Conversation, Message, stable_hash
from ..errors import DialforgeError
from ..io.reader import read_conversations, read_texts
from ..llm.client import LLM
from ..run.rundir import config_fingerprint
from .config import SeedConfig, SimulateConfig
from .simulators import ConvState, UserSimulator, sample_index
from .stops import check_assistant_turn, check_user_turn

log = logging.getLogger("dialforge.simulate")


@dataclass
class Seed:
    id: str
    messages: list[dict[str, Any]]
    topic: str | None = None


def load_seeds(cfg: SeedConfig) -> list[Seed]:
    seeds: list[Seed] = []
    for path in cfg.questions:
        for q in read_texts(path):
            seeds.append(Seed(stable_hash("q", q), [{"role": "user", "content": q, "meta": {"seed": True}}], q))
    for path in cfg.exchanges:
        for c in read_conversations(path, on_error="skip"):
            body = c.dialogue()
            if len(body) >= 2 and body[0].role == "user" and body[1].role == "assistant":
                msgs = [{"role": m.role, "content": m.content, "meta": {"seed": True}} for m in body[:2]]
                seeds.append(Seed(stable_hash("x", body[0].content, body[1].content), msgs, body[0].content))
    seen: set[str] = set()
    uniq = [s for s in seeds if not (s.id in seen or seen.add(s.id))]  # type: ignore[func-returns-value]
    if cfg.limit:
        uniq = uniq[: cfg.limit]
    uniq += [Seed(stable_hash("free", i), [], None) for i in range(cfg.free)]
    if not uniq:
        raise DialforgeError("no seeds: the seed files are empty")
    return uniq


class Engine:
    def __init__(self, cfg: SimulateConfig, simulator: UserSimulator, assistant: LLM) -> None:
        self.cfg = cfg
        self.sim = simulator
        self.assistant = assistant

    async def run_one(self, conv_id: str, seed: Seed, sample: int) -> Conversation:
        cfg = self.cfg
        persona = cfg.personas[int(stable_hash(seed.id, sample), 16) % len(cfg.personas)] if cfg.personas else None
        state = ConvState(
            conv_id=conv_id, messages=[dict(m) for m in seed.messages], sample=sample, persona=persona, topic=seed.topic
        )
        state.user_turns = sum(1 for m in state.messages if m["role"] == "user")
        reason: str | None = None
        extra: dict[str, Any] = {}
        started = time.perf_counter()
        while reason is None:
            msgs = state.messages
            if not msgs or msgs[-1]["role"] == "assistant":
                if state.user_turns >= cfg.max_turns:
                    reason = "max_turns"
                    break
                turn = await self.sim.next_turn(state)
                if turn.stop:
                    reason = turn.stop
                    extra.update(turn.meta)
                    break
                earlier = [m["content"] for m in msgs if m["role"] == "user"]
                reason = check_user_turn(turn.text, earlier, cfg.stop)
                if reason:
                    extra["final_user_turn"] = turn.text  # kept for analysis, not in the dialogue
                    break
                msgs.append({"role": "user", "content": turn.text, "meta": turn.meta})
                state.user_turns += 1
            else:
                if sum(len(m["content"]) for m in msgs) > cfg.stop.max_context_chars:
                    reason = "context_budget"
                    break
                comp = await self.assistant.complete(state.plain(), sample_index=sample_index(state))
                if not comp.ok:
                    reason, extra["error"] = "error", comp.error
                    break
                text = comp.text.strip()
                reason = check_assistant_turn(text, msgs[-1]["content"], cfg.stop)
                if reason and reason != "goodbye":
                    extra["final_assistant_turn"] = text
                    break
                msgs.append(
                    {
                        "role": "assistant",
                        "content": text,
                        "meta": {
                            "model": comp.model,
                            "latency_s": round(comp.latency_s, 4),
                            "usage": [comp.usage.prompt_tokens, comp.usage.completion_tokens],
                        },
                    }
                )
        # a training dialogue ends on an answer: drop a trailing unanswered user turn
        while state.messages and state.messages[-1]["role"] == "user" and not state.messages[-1]["meta"].get("seed"):
            extra.setdefault("dropped_user_turns", []).append(state.messages.pop()["content"])
        messages = [Message(role=m["role"], content=m["content"], meta=m.get("meta") or {}) for m in state.messages]
        usage = [0, 0]
        for m in messages:
            u = m.meta.get("usage")
            if u:
                usage[0] += u[0]
                usage[1] += u[1]
        meta = {
            "mode": cfg.mode,
            "seed_id": seed.id,
            "sample_index": sample,
            "simulator_model": self.sim.model_id,
            "assistant_model": self.assistant.model_id,
            "termination_reason": reason,
            "user_turns": sum(1 for m in messages if m.role == "user"),
            "usage": usage,
            "wall_s": round(time.perf_counter() - started, 3),
            **extra,
        }
        if persona:
            meta["persona"] = persona
        return Conversation(id=conv_id, messages=messages, meta=meta)


def conversation_id(cfg: SimulateConfig, seed: Seed, sample: int) -> str:
    return stable_hash(
        "simulate", config_fingerprint(cfg.model_copy(update={"seeds": SeedConfig(free=1)})), seed.id, sample
    )
