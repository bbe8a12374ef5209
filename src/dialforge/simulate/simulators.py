"""User simulators: prompted (persona / Socratic), trained (PlatoLM-style), strategy-guided (IDEAS).

All of them see the dialogue from the user's side: the assistant's answers become the
"user" messages and the simulated user's own turns the "assistant" messages, so any chat
model (and a simulator trained with `dialforge train simulator`) writes the next user turn
as its own reply. A prompted simulator gets its instruction *after* the history, which keeps
it from slipping into the assistant role.
"""

from __future__ import annotations

import functools
import logging
import random
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from rapidfuzz.distance import Indel, Levenshtein

from ..conversation import stable_hash
from ..llm.client import LLM
from .config import DEFAULT_THRESHOLDS, StopConfig, StrategyConfig
from .contracts import ConvState, UserTurn, sample_index, usage_meta
from .contracts import UserSimulator as UserSimulator  # the contracts' old import path
from .stops import check_user_turn, clean_turn

log = logging.getLogger("dialforge.simulate")


_SWAP = {"user": "assistant", "assistant": "user"}


def swap_roles(
    messages: list[dict[str, str]], *, opening: str | None = None, instruction: str | None = None
) -> list[dict[str, str]]:
    """The dialogue seen from the other side: user and assistant swapped, system messages
    dropped (they instruct the other side; the speaker brings its own system prompt).

    With `opening` or `instruction` the result is a chat that strict templates (Mistral,
    Gemma, Llama 2) accept: see `chat_turns`. Without either, the plain swap, which is how
    a trained simulator saw its training dialogues."""
    if opening is None and instruction is None:
        return [
            {"role": _SWAP.get(m["role"], m["role"]), "content": m["content"]}
            for m in messages
            if m["role"] != "system"
        ]
    return chat_turns(messages, opening=opening, instruction=instruction, swap=True)


def chat_turns(
    messages: list[dict[str, str]],
    *,
    opening: str | None = None,
    instruction: str | None = None,
    swap: bool = False,
) -> list[dict[str, str]]:
    """Messages as a chat that starts with a user message and alternates (system messages
    dropped; `swap`: user and assistant swapped first): `opening` is the first user message
    when the history starts with the assistant, consecutive messages of one role are joined,
    and `instruction` ends the last user message (or is appended as one), so the speaker
    reads it after the history."""
    out: list[dict[str, str]] = []
    for m in messages:
        role = m["role"]
        if role == "system":
            continue
        if swap:
            role = _SWAP.get(role, role)
        if out and out[-1]["role"] == role:
            out[-1] = {"role": role, "content": f"{out[-1]['content']}\n\n{m['content']}"}
        else:
            out.append({"role": role, "content": m["content"]})
    if opening is not None and (not out or out[0]["role"] != "user"):
        out.insert(0, {"role": "user", "content": opening})
    if instruction is not None:
        if out and out[-1]["role"] == "user":
            out[-1] = {"role": "user", "content": f"{out[-1]['content']}\n\n{instruction}"}
        else:
            out.append({"role": "user", "content": instruction})
    return out


PERSONA_SYSTEM = (
    "You are role-playing a human user who talks with an AI assistant. Your persona: {persona}. "
    "Stay in character. You only ever write the user's messages: ask, instruct, push back, or "
    "follow up on what the assistant said; never answer your own questions. When you have "
    "nothing more to ask, reply with exactly {end}."
)
SOCRATIC_SYSTEM = (
    "You are a curious, demanding human user talking with an AI assistant. You only ever write "
    "the user's messages. Ask questions and give instructions that build on the assistant's "
    "last answer and go deeper; never answer your own questions. When you have nothing more to "
    "ask, reply with exactly {end}."
)
NEXT_TURN = (
    "(Now write the user's next message to the assistant: one short follow-up question or request about its "
    "answer, in your own words, one or two sentences. No preamble, no quotation marks, no role label.)"
)
FIRST_TURN = "(Start the conversation: write your first message to the assistant.{topic})"


class PromptedUser:
    """Any instruct model prompted as the user: a system prompt (persona, Socratic, a
    self-talk client: a template of `persona`, `end`, `topic` and the conversation's
    `context`), the dialogue with roles swapped, then `instruction` after the history. The
    opening request (what it was asked for its first turn) heads the swapped history, so the
    chat starts with a user message and alternates."""

    def __init__(
        self,
        llm: LLM,
        system: str,
        end_token: str,
        *,
        instruction: str | None = NEXT_TURN,
        first_turn: str = FIRST_TURN,
    ) -> None:
        self.llm = llm
        self.system = system
        self.end_token = end_token
        self.instruction = instruction
        self.first_turn = first_turn
        self.model_id = llm.model_id

    def messages(self, state: ConvState) -> list[dict[str, str]]:
        fields = {k: v for k, v in state.context.items() if isinstance(v, str)} if state.context else {}
        fields.update(persona=state.persona or "", end=self.end_token, topic=state.topic or "")
        system = {"role": "system", "content": self.system.format_map(fields)}
        opening = self.first_turn.format(topic=f" Topic: {state.topic}" if state.topic else "")
        if not state.messages:
            return [system, {"role": "user", "content": opening}]
        return [system, *swap_roles(state.plain(), opening=opening, instruction=self.instruction)]

    async def next_turn(self, state: ConvState) -> UserTurn:
        msgs = self.messages(state)
        comp = await self.llm.complete(msgs, sample_index=sample_index(state))
        if not comp.ok:
            return UserTurn(stop="error", meta={"error": comp.error})
        # the prompts' own words, not the persona or intent filled into them (a client that
        # states its intent in the intent's words is doing its job)
        told = (
            *re.split(r"\{[^{}]*\}", self.system),
            self.instruction or "",
            re.sub(r"\{[^{}]*\}", " ", self.first_turn),
        )
        return UserTurn(text=comp.text.strip(), meta=usage_meta([comp]), instructions=told)


class TrainedUser:
    """A simulator trained on user turns (PlatoLM): prompted exactly as trained. The prompt
    is rendered by the training renderer from the model's `dialforge_template.json` (template,
    system prompt, role swap) and sent as token ids (in-process, or an HTTP server's raw
    completions endpoint), so inference sees the training ids. With no history it opens the
    topic itself (free mode: system prompt + `Human: <s>`)."""

    def __init__(self, llm: LLM, system: str | None = None, tokenizer: str | None = None) -> None:
        from ..train.prompting import SimulatorPrompt

        self.llm = llm
        self.model_id = llm.model_id
        self.prompt = SimulatorPrompt(tokenizer or llm.model_id, system)

    async def next_turn(self, state: ConvState) -> UserTurn:
        dialogue = state.plain()
        try:
            ids = self.prompt.ids(dialogue)
        except Exception as e:  # a template that cannot render this dialogue fails this conversation only
            return UserTurn(stop="error", meta={"error": f"cannot render the prompt: {type(e).__name__}: {e}"})
        comp = await self.llm.complete(self.prompt.messages(dialogue), prompt=ids, sample_index=sample_index(state))
        if not comp.ok:
            return UserTurn(stop="error", meta={"error": comp.error})
        return UserTurn(text=comp.text.strip(), meta=usage_meta([comp]))


class StrategyPick(BaseModel):
    strategy_number: int = Field(description="the number of the chosen strategy")
    instruction: str = Field(description="the user's next message, following that strategy")


@functools.lru_cache(maxsize=64)
def strategy_pick(n: int) -> type[StrategyPick]:
    """`StrategyPick` with the real range of `strategy_number` (1..n) and an instruction of a
    sentence at least, in the schema: constrained decoding then cannot emit 164 or 117921372,
    or a one-character instruction."""
    from pydantic import create_model

    return create_model(
        "StrategyPick",  # the name servers and fakes see in response_format (one per n, cached)
        __base__=StrategyPick,
        strategy_number=(int, Field(ge=1, le=n, description="the number of the chosen strategy")),
        instruction=(str, Field(min_length=12, description="the user's next message, following that strategy")),
    )


class Verdict(BaseModel):
    """IDEAS quality control (reference/ideas.md §3.4): the reasons first, then the verdict."""

    analysis: str = Field(description="why the new instruction is or is not correct and logically coherent")
    result: Literal["yes", "no"] = Field(description="yes: correct and logically coherent")


STRATEGY_SYSTEM = (
    "You are role-playing a thoughtful human user who talks with an AI assistant and wants "
    "diverse, in-depth follow-ups. You will see the dialogue so far and a numbered list of "
    "instruction strategies. Pick the strategy that fits the assistant's last answer best and "
    "write the user's next message following it: specific to this dialogue, in the user's "
    "voice, one message, never answering it yourself. Answer in JSON with strategy_number and "
    "instruction."
)
# The published verifier's criteria (reference/ideas.md §3.4), in our words.
JUDGE_SYSTEM = """You are an expert evaluator of multi-turn dialogues between a USER and an AI ASSISTANT. \
The USER has just raised a new instruction. Decide whether it is reasonable: reasonable means \
correct AND logically coherent.

The instruction is correct when both hold:
1. it contradicts neither the assistant's answers (nor facts inferable from or implied by them) \
nor the user's earlier instructions;
2. no earlier assistant answer already answers it.

The instruction is logically coherent when at least one holds:
1. it makes a new request, raises a doubt, asks for confirmation or inquires about the assistant's answers;
2. it follows up on a concept or entity mentioned in the answers;
3. it extends an earlier instruction;
4. it asks for information related to concepts or entities in the answers.

Write your analysis first, then the result: "yes" if the instruction is reasonable, "no" if not. \
Answer in JSON with the keys analysis and result."""


def render_dialogue(messages: list[dict[str, str]], max_chars: int = 2000, names: dict[str, str] | None = None) -> str:
    """The one dialogue renderer for prompts that quote a dialogue (strategy choice, QC
    judge, self-talk end check): `ROLE: text` blocks, long turns cut; `names` renames roles
    (self-talk: the agent's character and CLIENT)."""
    out = []
    for m in messages:
        text = m["content"] if len(m["content"]) <= max_chars else m["content"][:max_chars] + " [...]"
        name = (names or {}).get(m["role"], m["role"])
        out.append(f"{name.upper()}: {text}")
    return "\n\n".join(out)


def judge_messages(dialogue: list[dict[str, str]], instruction: str) -> list[dict[str, str]]:
    earlier = [m["content"] for m in dialogue if m["role"] == "user"]
    listing = "\n".join(f"{i}. {t}" for i, t in enumerate(earlier, 1)) or "(none)"
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {
            "role": "user",
            "content": f"### Dialogue history\n{render_dialogue(dialogue)}\n### Earlier user instructions\n"
            f"{listing}\n### New instruction\n{instruction}\n###",
        },
    ]


def indel_ratio(a: str, b: str) -> float:
    """The repetition ratio IDEAS used (python-Levenshtein's `ratio`: the Indel similarity)."""
    return float(Indel.normalized_similarity(a, b))


class StrategyUser:
    """IDEAS deduction: rank the library's strategies for the last answer, sample up to K
    candidates above the threshold, let the simulator pick one and write the instruction;
    quality control rejects repeats (Indel ratio), instructions an engine stop rule would end
    on (role flip, goodbye, ...) and those the judge finds incorrect or incoherent (a failed
    or unparseable verdict is a rejection too), then resamples; `max_rejections` consecutive
    rejections end the conversation.

    Rankers: `provenance` (default) scores a strategy by how close the current answer is to
    the answers real users reacted to with it (the library's `contexts`); `embedding` by the
    cosine between the answer and the strategy's centroid; `llm` asks the simulator's model
    which of the embedding shortlist fit. Answers of all live conversations are embedded
    together (`EmbedBatcher`), never one at a time under a lock."""

    def __init__(
        self,
        llm: LLM,
        cfg: StrategyConfig,
        judge: LLM | None = None,
        trained: bool = False,
        stop: StopConfig | None = None,
        tokenizer: str | None = None,
    ) -> None:
        from ..induce.batcher import EmbedBatcher
        from ..induce.embed import Embedder
        from ..induce.library import StrategyLibrary

        self.llm = llm
        self.cfg = cfg
        self.judge = judge if cfg.judge is not False else None
        self.trained = trained
        self.stop = stop
        self.model_id = llm.model_id
        self.library = StrategyLibrary.load(cfg.library)
        if not self.library.strategies:
            from ..errors import DialforgeError

            raise DialforgeError(f"{cfg.library}: the library has no strategies")
        self.centroids = self.library.centroids()
        lib_dir = Path(cfg.library) if Path(cfg.library).is_dir() else Path(cfg.library).parent
        # cached beside the library: the provenance contexts are embedded once per library, not per run
        self.embedder = Embedder(cfg.embedder or self.library.embedder, cache_dir=lib_dir)
        self.batcher = EmbedBatcher(self.embedder)
        self.ranker = cfg.ranker
        self._contexts: tuple[np.ndarray, np.ndarray] | None = None
        self._has: np.ndarray | None = None  # strategies with provenance contexts
        if self.ranker == "provenance" and not any(s.contexts for s in self.library.strategies):
            log.warning("%s has no provenance contexts (an older library): ranking by embedding", cfg.library)
            self.ranker = "embedding"
        self.threshold = cfg.threshold if cfg.threshold is not None else DEFAULT_THRESHOLDS[self.ranker]
        if self.ranker == "provenance":
            self._context_matrix()  # once, at start: never per conversation
        self._prompt = None
        if trained:
            from ..train.prompting import SimulatorPrompt

            self._prompt = SimulatorPrompt(tokenizer or llm.model_id, system=None)

    def _context_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """All strategies' context embeddings in one matrix, and each strategy's first row."""
        if self._contexts is None:
            texts = [t for s in self.library.strategies for t in s.contexts]
            starts = np.cumsum([0] + [len(s.contexts) for s in self.library.strategies[:-1]])
            emb = self.embedder.embed(texts) if texts else np.zeros((0, self.centroids.shape[1]), np.float32)
            self._contexts = (np.asarray(emb, dtype=np.float32), starts.astype(np.int64))
        return self._contexts

    def scores(self, v: np.ndarray) -> np.ndarray:
        """A score per strategy for an answer's embedding `v` (higher fits better)."""
        if self.ranker != "provenance":
            return self.centroids @ v
        emb, starts = self._context_matrix()
        if self._has is None:
            self._has = np.array([bool(s.contexts) for s in self.library.strategies])
        out = np.full(len(self._has), -1.0, dtype=np.float32)
        out[self._has] = np.maximum.reduceat(emb @ v, starts[self._has])
        return out

    async def _answer_vector(self, state: ConvState) -> np.ndarray:
        """The last answer's embedding, once per turn (a rejected proposal's retry reuses it)."""
        key = (len(state.messages), state.messages[-1]["content"])
        cached = state.context.get("_strategy_answer")
        if cached is not None and cached[0] == key:
            return cached[1]  # type: ignore[no-any-return]
        v = await self.batcher.embed(key[1])
        state.context["_strategy_answer"] = (key, v)
        return v

    async def candidates(self, state: ConvState, attempt: int) -> list[int]:
        """Strategies whose score clears the threshold, and at least the `min_candidates`
        best (or those the LLM ranker picks from the 3K best), then up to K of them sampled at
        random, as IDEAS samples from the ranker's positives; the K best when the LLM picks
        none. The floor keeps one lucky strategy from deciding alone and gives an answer that
        none fits its best few, not K at random (docs/methods.md). Seeded per turn and retry."""
        sims = self.scores(await self._answer_vector(state))
        ranked = np.argsort(-sims, kind="stable")
        order: list[int] = ranked.tolist()
        if self.ranker == "llm":
            fitting = await self._llm_pick(state, order[: 3 * self.cfg.candidates])
        else:
            clear = int(np.count_nonzero(sims >= self.threshold))
            fitting = order[: max(clear, self.cfg.min_candidates)]
        fitting = fitting or order[: self.cfg.candidates]
        rng = random.Random(stable_hash(state.conv_id, state.user_turns, attempt))
        picked = rng.sample(fitting, min(len(fitting), self.cfg.candidates))
        rng.shuffle(picked)
        return picked

    async def _llm_pick(self, state: ConvState, pool: list[int]) -> list[int]:
        """The pool's strategies that an LLM judges fit for the next user message."""
        from pydantic import create_model

        fitting = create_model("Fitting", numbers=(list[int], Field(max_length=len(pool))))
        listing = "\n".join(f"{n}. {self.library.strategies[i].text}" for n, i in enumerate(pool, 1))
        res = await self.llm.structured(
            [
                {
                    "role": "system",
                    "content": "Which of these instruction strategies would make a good next user message "
                    "after the assistant's last answer? Answer in JSON with numbers: the fitting ones.",
                },
                {"role": "user", "content": f"{render_dialogue(state.plain()[-2:])}\n\nStrategies:\n{listing}"},
            ],
            fitting,
            sample_index=sample_index(state),
        )
        if not res.value:
            return []
        numbers: list[int] = getattr(res.value, "numbers", [])
        return list(dict.fromkeys(pool[n - 1] for n in numbers if 1 <= n <= len(pool)))

    async def _propose_trained(
        self, state: ConvState, texts: list[str], attempt: int, comps: list[Any]
    ) -> tuple[int | None, str | None, str | None, str | None]:
        """A strategy-conditioned trained simulator, prompted exactly as trained (candidates
        as the system prompt, the template's roles), answering with the IDEAS markers."""
        from ..train.strategy_data import candidates_prompt, parse_target

        assert self._prompt is not None
        system = candidates_prompt(texts)
        ids = self._prompt.ids(state.plain(), system=system)
        msgs = self._prompt.messages(state.plain(), system=system)
        comp = await self.llm.complete(msgs, prompt=ids, sample_index=sample_index(state, attempt))
        comps.append(comp)
        if not comp.ok:
            return None, None, None, comp.error
        parsed = parse_target(comp.text)
        if parsed is None:
            return None, None, "no strategy/instruction markers in the reply", None
        strategy, instruction = parsed
        scores = [Levenshtein.normalized_similarity(strategy, t) for t in texts]
        best = int(np.argmax(scores))
        if scores[best] < 0.8:
            return None, None, f"strategy {strategy[:60]!r} is not among the candidates", None
        return best + 1, instruction, None, None

    async def _propose(
        self, state: ConvState, cands: list[int], attempt: int, comps: list[Any]
    ) -> tuple[int | None, str | None, str | None, str | None]:
        """(candidate number, instruction, rejection reason, request error)."""
        texts = [self.library.strategies[i].text for i in cands]
        state.context["_strategy_texts"] = tuple(texts)
        if self.trained:
            return await self._propose_trained(state, texts, attempt, comps)
        listing = "\n".join(f"{n}. {t}" for n, t in enumerate(texts, 1))
        msgs = [
            {"role": "system", "content": STRATEGY_SYSTEM},
            {
                "role": "user",
                "content": f"Dialogue so far:\n\n{render_dialogue(state.plain())}\n\n"
                f"Strategies:\n{listing}\n\nWrite the user's next message.",
            },
        ]
        res = await self.llm.structured(msgs, strategy_pick(len(cands)), sample_index=sample_index(state, attempt))
        comps.extend(res.completions)
        if res.value is None:
            if any(not c.ok for c in res.completions):
                return None, None, None, res.error
            return None, None, f"unparsable: {res.error}", None
        if not 1 <= res.value.strategy_number <= len(cands):
            return None, None, f"strategy number {res.value.strategy_number} not in 1..{len(cands)}", None
        return res.value.strategy_number, clean_turn(res.value.instruction), None, None

    async def _judge(self, state: ConvState, text: str, attempt: int) -> str | None:
        """None when the judge accepts; else the rejection. No verdict is a rejection."""
        assert self.judge is not None
        params = self.judge.params.model_copy(update={"temperature": 0.0, "n": 1})
        verdict = await self.judge.structured(
            judge_messages(state.plain(), text), Verdict, params=params, sample_index=sample_index(state, attempt)
        )
        if verdict.value is None:
            return f"judge gave no verdict: {verdict.error}"
        if verdict.value.result != "yes":
            return f"judge: {verdict.value.analysis.strip()[:300]}"
        return None

    async def _check(self, state: ConvState, text: str, earlier: list[str], attempt: int) -> str | None:
        """Quality control of one proposed instruction: None when accepted."""
        if not text:
            return "empty instruction"
        sim = max((indel_ratio(text, e) for e in earlier), default=0.0)
        if sim > self.cfg.max_similarity:
            return f"repeats an earlier instruction (ratio {sim:.2f})"
        if self.stop is not None:
            last = state.messages[-1]["content"] if state.messages else None
            # the strategy texts are instructions too: an instruction that copies one is no message
            told = (STRATEGY_SYSTEM, *state.context.get("_strategy_texts", ()))
            reason = check_user_turn(text, earlier, self.stop, last_answer=last, instructions=told)
            if reason:
                return f"engine stop: {reason}"
        if self.judge is not None:
            return await self._judge(state, text, attempt)
        return None

    async def next_turn(self, state: ConvState) -> UserTurn:
        earlier = [m["content"] for m in state.messages if m["role"] == "user"]
        rejections: list[str] = []
        comps: list[Any] = []
        for attempt in range(self.cfg.max_rejections):
            cands = await self.candidates(state, attempt)
            number, text, problem, error = await self._propose(state, cands, attempt, comps)
            if error:
                return UserTurn(stop="error", meta={"error": error})
            if problem is None:
                assert number is not None and text is not None
                problem = await self._check(state, text, earlier, attempt)
            if problem:
                rejections.append(problem)
                continue
            assert number is not None and text is not None
            s = self.library.strategies[cands[number - 1]]
            meta = {
                **usage_meta(comps),
                "strategy_id": s.id,
                "strategy": s.text,
                "candidates": len(cands),
                "ranker": self.ranker,
                "judge": self.judge.model_id if self.judge is not None else None,
                "rejections": rejections,
            }
            return UserTurn(text=text, meta=meta)
        return UserTurn(stop="rejections", meta={"rejections": rejections})
