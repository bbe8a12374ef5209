"""Self-talk (Ulmer et al. 2024): a client LLM with a persona and an intent talks to an
agent LLM told its current workflow step; a step tracker follows the client's answers
through the graph; the ROUGE-L subgoal tracker scores each dialogue; filters keep the best;
the agent is trained on them (loss on agent turns) and the loop runs again.

Layout: RUN_DIR/loop-<i>/dialogues.jsonl, kept.jsonl, agent/ (the trained agent).
"""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config import INPUT_FILE, OPERATIONAL
from ..conversation import Conversation, Message, stable_hash
from ..errors import DialforgeError
from ..io.reader import write_conversations
from ..llm.client import LLM, run_sync
from ..llm.config import BackendConfig, BackendPool, borrow_pool
from ..llm.types import SamplingParams
from ..progress import stage_progress
from ..run.rundir import RunDir
from .model import Workflow, load_workflows
from .tracker import THRESHOLD, rouge_l, track

log = logging.getLogger("dialforge.selftalk")

PUBLISHED_PARAMS = SamplingParams(temperature=0.8, top_p=0.95, top_k=50, max_tokens=100)
DEFAULT_PERSONAS = [
    "a busy parent who wants things done quickly",
    "a retired teacher who is polite and precise",
    "a student on a tight budget",
    "a frequent traveller who knows what they want",
    "a first-time customer who is unsure and asks many questions",
]
END_PHRASES = ["goodbye", "good bye", "bye", "good luck", "you're welcome", "have a nice day"]

AGENT_PROMPT = (
    "You are playing a {agent}. You help the user to {topic}. Keep each reply short. Once and only if "
    'the conversation has ended, say "goodbye". {instruction}'
)
CLIENT_PROMPT = (
    "You are playing {persona}. Your main intention is to talk to the {agent} to {intent}. Keep each "
    "reply short and answer the {agent}'s questions. Once and only if the conversation has ended, "
    'tell them "goodbye".'
)
PICKER_PROMPT = (
    "You rate the similarity of texts. Take the following sentence: {utterance}\nOnly select the "
    "option below that is most similar:\n{options}\nAnswer in JSON with the key option (a number)."
)


class FilterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["none", "abs_subgoals", "top_percent", "ended", "random"] = "top_percent"
    k: int = Field(5, ge=1, description="abs_subgoals: keep depth >= k")
    p: float = Field(0.05, gt=0, le=1, description="top_percent / random: fraction kept")
    seed: int = 0


class SelfTalkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflows: Annotated[str, INPUT_FILE]
    client: BackendConfig
    agent: BackendConfig
    picker: Literal["llm", "rouge"] = "rouge"
    picker_model: BackendConfig | None = Field(None, description="LLM option picker (default: the client model)")
    picker_threshold: float = THRESHOLD
    dialogues_per_workflow: int = Field(10, ge=1)
    personas: list[str] = Field(default_factory=lambda: list(DEFAULT_PERSONAS))
    intents: dict[str, list[str]] = Field(default_factory=dict, description="workflow name -> client intents")
    star_dialogues: Annotated[str | None, INPUT_FILE] = Field(
        None,
        description="STAR dialogues file: their written user tasks become the client intents of the matching workflows",
    )
    max_turns: int = Field(8, ge=1, description="agent+client exchanges")
    end_phrases: list[str] = Field(default_factory=lambda: list(END_PHRASES))
    filter: FilterSpec = FilterSpec()
    end_check: BackendConfig | None = Field(None, description="LLM end check: start/middle/end after each exchange")
    consistency_judge: BackendConfig | None = Field(
        None, description="LLM judge of the agent staying in character, per utterance (optional)"
    )
    loops: int = Field(1, ge=1)
    loss_on: Literal["agent", "all"] = "agent"
    train_epochs: float = 1.0
    train_max_steps: int = -1
    train_lr: float = 5e-4
    lora_r: int = 64
    concurrency: Annotated[int, OPERATIONAL] = Field(32, ge=1)


class Choice(BaseModel):
    option: int


class DialoguePart(BaseModel):
    part: Literal["start", "middle", "end"]


class InCharacter(BaseModel):
    in_character: bool


END_CHECK_PROMPT = (
    "You are an expert in identifying parts of a conversation. This is an excerpt from a conversation:\n"
    "{agent}: {agent_utterance}\nCLIENT: {client_utterance}\nWhat part of a conversation is this from? "
    "Answer in JSON with the key part: start, middle or end."
)
CONSISTENCY_PROMPT = (
    "Character: {agent}, who helps people {topic}.\nUtterance: {utterance}\nIs this utterance something this "
    "character would say, staying in role? Answer in JSON with the key in_character (true or false)."
)


def _ended(utterances: list[str], phrases: list[str]) -> bool:
    return any(p in u.lower() for u in utterances[-2:] for p in phrases)


def _swap(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    swap = {"user": "assistant", "assistant": "user"}
    return [{"role": swap[m["role"]], "content": m["content"]} for m in messages]


async def pick_option(
    cfg: SelfTalkConfig, picker: LLM | None, wf: Workflow, step: str, utterance: str, sample_index: int
) -> int | None:
    """Index of the option the client's utterance matches, or None."""
    options = wf.steps[step].options
    if not options:
        return None
    if cfg.picker == "llm" and picker is not None:
        listing = "\n".join(f"{i}. {o.answer or '(any other reply)'}" for i, o in enumerate(options, 1))
        listing += f"\n{len(options) + 1}. None of the above"
        res = await picker.structured(
            [{"role": "user", "content": PICKER_PROMPT.format(utterance=utterance, options=listing)}],
            Choice,
            sample_index=sample_index,
        )
        if res.value is not None and 1 <= res.value.option <= len(options):
            return res.value.option - 1
        return None
    scored = [(rouge_l(utterance, o.answer), i) for i, o in enumerate(options) if o.answer]
    if scored:
        best, i = max(scored)
        if best >= cfg.picker_threshold:
            return i
    anyone = [i for i, o in enumerate(options) if o.answer is None]
    return anyone[0] if anyone and utterance.strip() else None


async def run_dialogue(
    cfg: SelfTalkConfig,
    wf: Workflow,
    sample: int,
    conv_id: str,
    client: LLM,
    agent: LLM,
    picker: LLM | None,
    end_llm: LLM | None = None,
    consistency_llm: LLM | None = None,
) -> Conversation:
    rng = random.Random(conv_id)
    persona = rng.choice(cfg.personas)
    intents = cfg.intents.get(wf.name) or [f"{wf.topic}"]
    intent = rng.choice(intents)
    history: list[dict[str, Any]] = []
    step: str | None = wf.start
    instruction = f"Now, you must say: {wf.steps[wf.start].say}"
    reason = "max_turns"
    ending_said = False
    base = int(conv_id[:8], 16) << 8
    for turn in range(cfg.max_turns):
        system = AGENT_PROMPT.format(agent=wf.agent, topic=wf.topic, instruction=instruction)
        comp = await agent.complete(
            [{"role": "system", "content": system}, *[{"role": m["role"], "content": m["content"]} for m in history]],
            sample_index=base + 2 * turn,
        )
        if not comp.ok:
            reason = "error"
            break
        history.append(
            {
                "role": "assistant",
                "content": comp.text.strip(),
                "meta": {"step": step, "instruction": instruction, "model": comp.model},
            }
        )
        if ending_said:
            reason = "ended"
            break
        if _ended([m["content"] for m in history], cfg.end_phrases):
            reason = "goodbye"
            break
        cmsgs = [
            {"role": "system", "content": CLIENT_PROMPT.format(persona=persona, agent=wf.agent, intent=intent)},
            *_swap([{"role": m["role"], "content": m["content"]} for m in history]),
        ]
        comp = await client.complete(cmsgs, sample_index=base + 2 * turn + 1)
        if not comp.ok:
            reason = "error"
            break
        text = comp.text.strip()
        history.append({"role": "user", "content": text, "meta": {"model": comp.model}})
        if _ended([m["content"] for m in history], cfg.end_phrases):
            reason = "goodbye"
            break
        if end_llm is not None:
            res = await end_llm.structured(
                [
                    {
                        "role": "user",
                        "content": END_CHECK_PROMPT.format(
                            agent=wf.agent.upper(), agent_utterance=history[-2]["content"], client_utterance=text
                        ),
                    }
                ],
                DialoguePart,
                sample_index=base + 2 * turn + 1,
            )
            if res.value is not None and res.value.part == "end":
                reason = "end_check"
                break
        choice = await pick_option(cfg, picker, wf, step, text, base + 2 * turn + 1) if step else None
        if choice is None:
            instruction = "Now, you must give any natural reply that fits the conversation."
            if step is not None and wf.steps[step].is_ending:
                reason = "ended"
                break
            continue
        opt = wf.steps[step].options[choice]  # type: ignore[index]
        if opt.next:
            step = opt.next
            instruction = f"Now, you must say: {wf.steps[step].say}"
            ending_said = wf.steps[step].is_ending
        else:
            instruction = f"Now, you must say: {opt.end}"
            step = f"{step}#{choice}"
            ending_said = True
    # a dialogue for agent training ends on an agent turn
    while history and history[-1]["role"] == "user" and reason not in ("goodbye", "end_check"):
        history.pop()
    agent_utts = [m["content"] for m in history if m["role"] == "assistant"]
    evaluation = track(wf, agent_utts)
    if consistency_llm is not None and agent_utts:
        verdicts = await asyncio.gather(
            *(
                consistency_llm.structured(
                    [
                        {
                            "role": "user",
                            "content": CONSISTENCY_PROMPT.format(agent=wf.agent, topic=wf.topic, utterance=u),
                        }
                    ],
                    InCharacter,
                )
                for u in agent_utts
            )
        )
        judged = [v.value.in_character for v in verdicts if v.value is not None]
        evaluation["character_consistency"] = round(sum(judged) / len(judged), 4) if judged else None
    return Conversation(
        id=conv_id,
        messages=[Message(role=m["role"], content=m["content"], meta=m["meta"]) for m in history],
        meta={
            "mode": "selftalk",
            "workflow": wf.name,
            "workflow_agent": wf.agent,
            "persona": persona,
            "intent": intent,
            "sample_index": sample,
            "agent_model": agent.model_id,
            "client_model": client.model_id,
            "termination_reason": reason,
            "workflow_eval": {
                k: evaluation[k]
                for k in ("depth", "relative_depth", "success", "path", "character_consistency")
                if k in evaluation
            },
        },
    )


def star_intents(path: str | Path) -> dict[str, list[str]]:
    """STAR's written user instructions (Scenario.UserTask) by task, single-task dialogues only."""
    from ..io._records import iter_records

    out: dict[str, list[str]] = {}
    for d, _, _ in iter_records(Path(path)):
        if isinstance(d, Exception):
            raise d
        caps = d["Scenario"]["WizardCapabilities"]
        if len(caps) == 1 and d["Scenario"].get("UserTask"):
            out.setdefault(caps[0]["Task"], []).append(d["Scenario"]["UserTask"])
    return out


def agent_diversity(convs: list[Conversation], max_pairs: int = 25, seed: int = 0) -> dict[str, float]:
    """Per agent character: 1 - mean pairwise ROUGE-L between dialogues (agent turns), over
    at most `max_pairs` random pairs, as in the Self-Talk paper."""
    by_agent: dict[str, list[str]] = {}
    for c in convs:
        text = " ".join(m.content for m in c.messages if m.role == "assistant")
        by_agent.setdefault(str(c.meta.get("workflow_agent", c.meta.get("workflow"))), []).append(text)
    out = {}
    rng = random.Random(seed)
    for agent, texts in sorted(by_agent.items()):
        pairs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))]
        if not pairs:
            continue
        pairs = rng.sample(pairs, min(max_pairs, len(pairs)))
        out[agent] = round(1 - sum(rouge_l(texts[i], texts[j]) for i, j in pairs) / len(pairs), 4)
    return out


def apply_filter(convs: list[Conversation], spec: FilterSpec) -> list[Conversation]:
    """The published filters: abs_subgoals (depth >= k), top_percent (best p by relative
    depth, then depth), ended (reached an ending), random (p, seeded), none."""
    ev = {c.id: c.meta.get("workflow_eval", {}) for c in convs}
    if spec.kind == "none":
        return list(convs)
    if spec.kind == "abs_subgoals":
        return [c for c in convs if ev[c.id].get("depth", 0) >= spec.k]
    if spec.kind == "ended":
        return [c for c in convs if ev[c.id].get("success")]
    n = max(1, round(len(convs) * spec.p)) if convs else 0
    if spec.kind == "random":
        return random.Random(spec.seed).sample(list(convs), n)
    ranked = sorted(convs, key=lambda c: (-ev[c.id].get("relative_depth", 0), -ev[c.id].get("depth", 0), c.id))
    return ranked[:n]


async def selftalk_async(
    cfg: SelfTalkConfig,
    out: str | Path,
    *,
    force_new: bool = False,
    progress: bool | None = None,
    pool: BackendPool | None = None,
) -> dict[str, Any]:
    workflows = load_workflows(cfg.workflows)
    if cfg.star_dialogues:
        cfg = cfg.model_copy(update={"intents": {**star_intents(cfg.star_dialogues), **cfg.intents}})
    out = Path(out)
    summary: dict[str, Any] = {"loops": []}
    with RunDir(
        out,
        command="selftalk",
        config=cfg,
        models={"client": cfg.client.model, "agent": cfg.agent.model},
        force_new=force_new,
    ) as run:
        agent_cfg = cfg.agent
        for loop in range(cfg.loops):
            loop_dir = out / f"loop-{loop}"
            store = run.store(f"loop-{loop}/dialogues.jsonl")
            # a pool per loop (unless the caller shares one): the next loop's agent is the trained one
            loop_pool, close_pool = borrow_pool(pool)
            client = LLM(
                loop_pool.get(cfg.client),
                cache=run.cache,
                usage=run.usage,
                stage=f"selftalk.client.{loop}",
                params=cfg.client.params_or(PUBLISHED_PARAMS),
            )
            agent = LLM(
                loop_pool.get(agent_cfg),
                cache=run.cache,
                usage=run.usage,
                stage=f"selftalk.agent.{loop}",
                params=agent_cfg.params_or(PUBLISHED_PARAMS),
            )

            def greedy(
                backend: BackendConfig | None, stage: str, max_tokens: int, pool: BackendPool = loop_pool
            ) -> LLM | None:
                """A deterministic helper role (option picker, end check, consistency judge)."""
                if backend is None:
                    return None
                return LLM(
                    pool.get(backend),
                    cache=run.cache,
                    usage=run.usage,
                    stage=f"selftalk.{stage}",
                    params=SamplingParams(temperature=0.0, max_tokens=max_tokens),
                )

            picker = greedy(cfg.picker_model or cfg.client, f"picker.{loop}", 32) if cfg.picker == "llm" else None
            end_llm = greedy(cfg.end_check, f"end_check.{loop}", 16)
            consistency_llm = greedy(cfg.consistency_judge, f"consistency.{loop}", 16)
            jobs = [
                (wf, k, stable_hash("selftalk", loop, wf.name, k, agent_cfg.model))
                for wf in workflows
                for k in range(cfg.dialogues_per_workflow)
            ]
            todo = [j for j in jobs if j[2] not in store]
            sem = asyncio.Semaphore(cfg.concurrency)
            run.usage.start_stage(f"selftalk.{loop}")
            try:
                with stage_progress(f"self-talk loop {loop}", len(todo), run.usage, progress) as bar:
                    roles = (client, agent, picker, end_llm, consistency_llm)

                    async def one(
                        wf: Workflow, k: int, cid: str, roles: tuple[Any, ...], store: Any, sem: asyncio.Semaphore
                    ) -> None:
                        async with sem:
                            conv = await run_dialogue(cfg, wf, k, cid, *roles)
                        store.append(conv.to_record())
                        bar.advance()

                    await asyncio.gather(*(one(*j, roles, store, sem) for j in todo))
            finally:
                run.usage.end_stage(f"selftalk.{loop}")
                await close_pool()
            wanted = {j[2] for j in jobs}
            convs = [Conversation.model_validate(r) for r in store.records() if r["id"] in wanted]
            kept = apply_filter(convs, cfg.filter)
            write_conversations(kept, loop_dir / "kept.jsonl")
            evs = [c.meta["workflow_eval"] for c in convs]
            info = {
                "loop": loop,
                "agent": agent_cfg.model,
                "dialogues": len(convs),
                "kept": len(kept),
                "depth_mean": round(sum(e["depth"] for e in evs) / len(evs), 3) if evs else None,
                "relative_depth_mean": round(sum(e["relative_depth"] for e in evs) / len(evs), 3) if evs else None,
                "success_rate": round(sum(e["success"] for e in evs) / len(evs), 3) if evs else None,
                "agent_diversity": agent_diversity(convs),
            }
            cc = [e["character_consistency"] for e in evs if e.get("character_consistency") is not None]
            if cc:
                info["character_consistency_mean"] = round(sum(cc) / len(cc), 3)
            if loop + 1 < cfg.loops:
                if not kept:
                    log.warning("loop %d kept no dialogue; stopping before training", loop)
                    info["stopped"] = "no dialogue kept"
                    summary["loops"].append(info)
                    break
                if agent_cfg.kind != "transformers":
                    raise DialforgeError("self-talk training needs an in-process agent (`agent.model` a local path)")
                from ..train import TrainConfig, train

                tsum = await asyncio.to_thread(
                    train,
                    TrainConfig(
                        kind="chat",
                        data=[str(loop_dir / "kept.jsonl")],
                        model=agent_cfg.model,
                        out=str(loop_dir / "agent"),
                        roles=["assistant"] if cfg.loss_on == "agent" else ["user", "assistant"],
                        epochs=cfg.train_epochs,
                        max_steps=cfg.train_max_steps,
                        learning_rate=cfg.train_lr,
                        lora_r=cfg.lora_r,
                        lora_alpha=cfg.lora_r * 2,
                        batch_size=4,
                        max_length=1024,
                    ),
                )
                info["train"] = {k: tsum[k] for k in ("examples", "steps", "train_loss")}
                agent_cfg = agent_cfg.model_copy(update={"model": tsum["final"]})
            summary["loops"].append(info)
            run.stage_done(f"loop-{loop}", **info)
    return summary


def selftalk(cfg: SelfTalkConfig, out: str | Path, **kw: Any) -> dict[str, Any]:
    return run_sync(selftalk_async(cfg, out, **kw))
