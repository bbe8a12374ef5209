"""The self-play engine: many conversations alive at once, one turn = one request to the
user simulator or the assistant; every conversation records why it ended.

Resume: a conversation is appended to `conversations.jsonl` when it ends, under an id that
is a hash of what determines it (mode, config, seed, sample index). A killed run started
again skips finished conversations and replays unfinished ones from the call cache.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ..conversation import Conversation, Message, stable_hash
from ..errors import BackendUnavailable, DialforgeError
from ..io.reader import read_conversations
from ..io.seeds import read_seeds
from ..llm.client import LLM
from ..run.rundir import config_fingerprint
from .config import SeedConfig, SimulateConfig, StopConfig
from .contracts import AssistantPolicy, AssistantTurn, ConvState, UserSimulator, UserTurn
from .policies import PlainAssistant
from .reasons import CLOSING, RESAMPLE, Termination
from .stops import check_assistant_turn, check_user_turn, clean_turn

_Turn = TypeVar("_Turn", UserTurn, AssistantTurn)

log = logging.getLogger("dialforge.simulate")


@dataclass
class Seed:
    """Where a conversation starts: its first messages (none: the opener starts), a topic,
    and for task modes the scenario: `persona` (else drawn from the settings), `context`
    (facts the roles read: workflow, intent, ...) and `meta` (kept in the record)."""

    id: str
    messages: list[dict[str, Any]]
    topic: str | None = None
    persona: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def _question_seeds(path: str, cfg: SeedConfig) -> list[Seed]:
    return [
        Seed(stable_hash("q", q), [{"role": "user", "content": q, "meta": {"seed": True}}], q)
        for q in read_seeds(path, text_field=cfg.text_field, on_error=cfg.on_error)
    ]


def _exchange_seeds(path: str) -> list[Seed]:
    """The first user+assistant exchange of each conversation that opens with one."""
    out = []
    for c in read_conversations(path, on_error="skip"):
        body = c.dialogue()
        if len(body) >= 2 and body[0].role == "user" and body[1].role == "assistant":
            msgs = [{"role": m.role, "content": m.content, "meta": {"seed": True}} for m in body[:2]]
            out.append(Seed(stable_hash("x", body[0].content, body[1].content), msgs, body[0].content))
    return out


def _first_n(seeds: list[Seed], sources: dict[str, str], limit: int) -> list[Seed]:
    """The first `limit` seeds, with a warning naming each file none of them comes from."""
    used = {sources[s.id] for s in seeds[:limit]}
    for path in dict.fromkeys(sources[s.id] for s in seeds[limit:]):
        if path not in used:
            log.warning("seeds: limit %d is reached before %s, so none of its seeds is used", limit, path)
    return seeds[:limit]


def load_seeds(cfg: SeedConfig) -> list[Seed]:
    """Question seeds, then exchange seeds, in file order, deduplicated; `limit` keeps the
    first N of them all (a file it leaves out entirely is named in a warning), then `free`."""
    files = [(path, _question_seeds(path, cfg)) for path in cfg.questions]
    files += [(path, _exchange_seeds(path)) for path in cfg.exchanges]
    uniq: dict[str, Seed] = {}
    sources: dict[str, str] = {}  # seed id -> the file it came from first
    for path, seeds in files:
        for seed in seeds:
            uniq.setdefault(seed.id, seed)
            sources.setdefault(seed.id, path)
    out = list(uniq.values())
    if cfg.limit and len(out) > cfg.limit:
        out = _first_n(out, sources, cfg.limit)
    out += [Seed(stable_hash("free", i), [], None) for i in range(cfg.free)]
    if not out:
        raise DialforgeError("no seeds: the seed files are empty")
    return out


@dataclass
class EngineSettings:
    """What the loop needs from a command's config. `max_turns` counts the opener's turns
    (simulate: user turns, seed included; self-talk: agent turns). `keep_closing_turn`: a
    user turn that closes the dialogue (goodbye, end check) stays in it (self-talk's client
    saying goodbye); otherwise it is kept in meta only and the dialogue ends on an answer."""

    mode: str
    max_turns: int
    stop: StopConfig
    personas: list[str] = field(default_factory=list)
    opener: Literal["user", "assistant"] = "user"
    keep_closing_turn: bool = False
    model_keys: tuple[str, str] = ("simulator_model", "assistant_model")

    @classmethod
    def of(cls, cfg: SimulateConfig) -> EngineSettings:
        return cls(mode=cfg.mode, max_turns=cfg.max_turns, stop=cfg.stop, personas=cfg.personas)


class Engine:
    """The one self-play loop: a user simulator and an assistant policy take turns until a
    stop rule, a hook or the turn budget ends the conversation; every mode runs on it."""

    def __init__(
        self,
        cfg: SimulateConfig | EngineSettings,
        simulator: UserSimulator,
        assistant: LLM | AssistantPolicy,
    ) -> None:
        self.settings = cfg if isinstance(cfg, EngineSettings) else EngineSettings.of(cfg)
        self.sim = simulator
        self.policy: AssistantPolicy = PlainAssistant(assistant) if isinstance(assistant, LLM) else assistant
        self._hooks = not isinstance(self.policy, PlainAssistant)  # a plain model has none: skip the awaits

    async def run_one(self, conv_id: str, seed: Seed, sample: int) -> Conversation:
        """One conversation. A conversation that fails ends on `error` with what it had
        (one broken conversation never kills a run); only `BackendUnavailable` is raised, so
        the executor stops the stage instead of failing every conversation alike."""
        state = self._start(conv_id, seed, sample)
        extra: dict[str, Any] = {}
        started = time.perf_counter()
        evaluation: dict[str, Any] = {}
        try:
            reason = await self._loop(state, extra)
            evaluation = await self.policy.evaluate(state) if self._hooks else {}
        except BackendUnavailable:  # a dead server: every conversation would fail alike
            raise
        except Exception as e:
            log.debug("conversation %s failed", conv_id, exc_info=True)
            reason, extra["error"] = Termination.ERROR, f"{type(e).__name__}: {e}"
        return self._record(state, seed, reason, {**evaluation, **extra}, time.perf_counter() - started)

    def _start(self, conv_id: str, seed: Seed, sample: int) -> ConvState:
        personas = self.settings.personas
        persona = seed.persona
        if persona is None and personas:
            persona = personas[int(stable_hash(seed.id, sample), 16) % len(personas)]
        state = ConvState(
            conv_id=conv_id,
            messages=[dict(m) for m in seed.messages],
            sample=sample,
            persona=persona,
            topic=seed.topic,
            context=dict(seed.context),
        )
        state.user_turns = sum(1 for m in state.messages if m["role"] == "user")
        state.assistant_turns = sum(1 for m in state.messages if m["role"] == "assistant")
        return state

    async def _loop(self, state: ConvState, extra: dict[str, Any]) -> Termination:
        s = self.settings
        while True:
            msgs = state.messages
            if msgs and msgs[-1]["role"] == "assistant":
                rounds = state.user_turns if s.opener == "user" else state.assistant_turns
                if rounds >= s.max_turns:
                    return Termination.MAX_TURNS
                reason = await self._user_turn(state, extra)
            elif not msgs and s.opener == "user":
                reason = await self._user_turn(state, extra)
            else:
                reason = await self._assistant_turn(state, extra)
            if reason is not None:
                return reason

    async def _draw(
        self,
        state: ConvState,
        draw: Callable[[], Awaitable[_Turn]],
        ended: Callable[[_Turn], bool],
        check: Callable[[_Turn], Termination | None],
    ) -> tuple[_Turn, Termination | None, list[str]]:
        """One turn, drawn again while it slips (a reason in RESAMPLE) up to `stop.resample`
        times; `ConvState.attempt` shifts each redraw's sample index. Returns the last draw,
        its reason (None when `ended`: an error or the simulator's own stop) and the slips
        drawn again ("reason: text"; the last draw's own slip is not among them)."""
        redrawn: list[str] = []
        try:
            for attempt in range(self.settings.stop.resample + 1):
                state.attempt = attempt
                turn = await draw()
                if ended(turn):
                    return turn, None, redrawn
                reason = check(turn)
                if reason not in RESAMPLE:
                    return turn, reason, redrawn
                redrawn.append(f"{reason.value}: {turn.text[:200]}")
            return turn, reason, redrawn[:-1]
        finally:
            state.attempt = 0

    async def _user_turn(self, state: ConvState, extra: dict[str, Any]) -> Termination | None:
        stop = self.settings.stop
        earlier = [m["content"] for m in state.messages if m["role"] == "user"]
        last = state.messages[-1]["content"] if state.messages and state.messages[-1]["role"] == "assistant" else None

        async def draw() -> UserTurn:
            turn = await self.sim.next_turn(state)
            turn.text = clean_turn(turn.text)
            return turn

        turn, reason, redrawn = await self._draw(
            state,
            draw,
            lambda t: bool(t.stop),
            lambda t: check_user_turn(t.text, earlier, stop, last_answer=last, instructions=t.instructions),
        )
        if turn.stop:
            extra.update(turn.meta)
            if redrawn:
                extra["redrawn_user_turns"] = redrawn
            return Termination(turn.stop)
        if redrawn:
            turn.meta = {**turn.meta, "redrawn": redrawn}
            if reason is not None:
                extra["redrawn_user_turns"] = redrawn
        if reason is None and self._hooks:
            reason = await self.policy.after_user_turn(state, turn.text)
        if reason is not None and not (self.settings.keep_closing_turn and reason in CLOSING):
            extra["final_user_turn"] = turn.text  # kept for analysis, not in the dialogue
            return reason
        state.messages.append({"role": "user", "content": turn.text, "meta": turn.meta})
        state.user_turns += 1
        return reason

    async def _assistant_turn(self, state: ConvState, extra: dict[str, Any]) -> Termination | None:
        msgs = state.messages
        if sum(len(m["content"]) for m in msgs) > self.settings.stop.max_context_chars:
            return Termination.CONTEXT_BUDGET
        last_user = msgs[-1]["content"] if msgs and msgs[-1]["role"] == "user" else None
        turn, reason, redrawn = await self._draw(
            state,
            lambda: self.policy.next_turn(state),
            lambda t: t.error is not None,
            lambda t: check_assistant_turn(t.text, last_user, self.settings.stop, instructions=t.instructions),
        )
        if turn.error is not None:
            extra["error"] = turn.error
            return Termination.ERROR
        if redrawn:
            turn.meta = {**turn.meta, "redrawn": redrawn}
        if reason is not None and reason != Termination.GOODBYE:
            if redrawn:
                extra["redrawn_assistant_turns"] = redrawn
            extra["final_assistant_turn"] = turn.text
            return reason
        msgs.append({"role": "assistant", "content": turn.text, "meta": turn.meta})
        state.assistant_turns += 1
        if self._hooks:
            return await self.policy.after_assistant_turn(state) or reason
        return reason

    def _record(
        self, state: ConvState, seed: Seed, reason: Termination, extra: dict[str, Any], wall_s: float
    ) -> Conversation:
        s = self.settings
        # a training dialogue ends on an answer: drop a trailing unanswered user turn
        # (a closing one stays when the mode keeps it)
        keep_last = s.keep_closing_turn and reason in CLOSING
        while (
            state.messages
            and state.messages[-1]["role"] == "user"
            and not state.messages[-1]["meta"].get("seed")
            and not keep_last
        ):
            extra.setdefault("dropped_user_turns", []).append(state.messages.pop()["content"])
        messages = [Message(role=m["role"], content=m["content"], meta=m.get("meta") or {}) for m in state.messages]
        usage = [0, 0]
        for m in messages:
            u = m.meta.get("usage")
            if u:
                usage[0] += u[0]
                usage[1] += u[1]
        meta = {
            "mode": s.mode,
            "seed_id": seed.id,
            "sample_index": state.sample,
            s.model_keys[0]: self.sim.model_id,
            s.model_keys[1]: self.policy.model_id,
            "termination_reason": reason.value,
            # simulated user turns only: a seed turn is a real person's words
            "user_turns": sum(1 for m in messages if m.role == "user" and not m.meta.get("seed")),
            "usage": usage,
            "wall_s": round(wall_s, 3),
            **seed.meta,
            **extra,
        }
        if state.persona:
            meta["persona"] = state.persona
        return Conversation(id=state.conv_id, messages=messages, meta=meta)


def simulate_key(cfg: SimulateConfig) -> str:
    """What every conversation id of a run shares: the config, seeds aside (computed once per
    plan: fingerprinting a config costs milliseconds)."""
    return config_fingerprint(cfg.model_copy(update={"seeds": SeedConfig(free=1)}))


def conversation_id(cfg: SimulateConfig, seed: Seed, sample: int, key: str | None = None) -> str:
    return stable_hash("simulate", key or simulate_key(cfg), seed.id, sample)
