"""Self-talk on the self-play engine: the client is a user simulator (a prompted character
with a persona and an intent) and the agent an assistant policy whose turn hooks follow its
workflow (option picker), check for the end (LLM end check) and judge its consistency.

Prompts follow the paper (reference/selftalk.md, App. A.2): the agent plays a service
character with a persona and reads its step instruction ("Now, you must say ...") after
the history, rebuilt every turn; the client gets its character, persona and intent once,
in the system prompt, and continues the history.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from ..conversation import stable_hash
from ..llm.client import LLM
from ..simulate.contracts import AssistantTurn, ConvState, UserTurn, completion_meta, sample_index, usage_meta
from ..simulate.engine import Engine, EngineSettings, Seed
from ..simulate.modes import SimulatorMode, get_mode
from ..simulate.reasons import Termination
from ..simulate.simulators import PromptedUser, chat_turns, render_dialogue
from .model import Workflow
from .tracker import rouge_l, track

if TYPE_CHECKING:
    from ..simulate.modes import ModeConfig
    from .config import SelfTalkConfig

AGENT_SYSTEM = (
    "You are playing the {agent}. {persona}{task} Stay in character and keep each reply short: one message, "
    'no role label. Once and only if the conversation has ended, say "goodbye".'
)
AGENT_OPENING = "(Someone comes up to talk to you.)"
SAY = "Now, you must say: {say}"
NATURAL = "Now, you must give any natural reply that fits the conversation."

CLIENT_SYSTEM = (
    "You are playing {persona}. {intent_clause} Keep each reply short and answer the {agent}'s questions. "
    'Once and only if the conversation has ended, tell them "goodbye". Now, briefly respond to the {agent} '
    "and describe your intention."
)
PICKER_PROMPT = (
    "You rate the similarity of texts. Take the following sentence: {utterance}\nOnly select the "
    "option below that is most similar:\n{options}\nAnswer in JSON with the key option (a number)."
)
END_CHECK_PROMPT = (
    "You are an expert in identifying parts of a conversation. This is an excerpt from a conversation:\n\n"
    "{excerpt}\n\nWhat part of a conversation is this from? Answer in JSON with the key part: start, middle or end."
)
CONSISTENCY_PROMPT = (
    "Character: the {agent}. {persona}{task}\nUtterance: {utterance}\nIs this utterance something this "
    "character would say, staying in role? Answer in JSON with the key in_character (true or false)."
)


class Choice(BaseModel):
    option: int


class DialoguePart(BaseModel):
    part: Literal["start", "middle", "end"]


class InCharacter(BaseModel):
    in_character: bool


def _is_phrase(text: str) -> bool:
    """A verb phrase ("buy a longsword", the paper's intents) rather than written task text
    ("You are Ben and want to ...", STAR's UserTask)."""
    t = text.strip()
    return bool(t) and t[0].islower() and not re.search(r"[.!?](\s|$)", t)


def _named(wf: Workflow) -> bool:
    """Topics of imported workflows are task names ("ride change"), not verb phrases."""
    return wf.source.get("format") in ("star", "abcd")


def agent_task(wf: Workflow) -> str:
    """The agent's task in the workflow's own words: its description, else from its topic."""
    if wf.description.strip():
        return wf.description.strip()
    if not wf.topic:
        return ""
    if _named(wf) or not _is_phrase(wf.topic):
        return f"You help people with {wf.topic}."
    return f"You help people who come to you to {wf.topic}."


def default_intent(wf: Workflow) -> str:
    if not wf.topic:
        return "get help"
    return f"get help with {wf.topic}" if _named(wf) or not _is_phrase(wf.topic) else wf.topic


def intent_clause(agent: str, intent: str) -> str:
    """The client's intent as a well-formed sentence for a phrase or for written task text."""
    if _is_phrase(intent):
        return f"Now, your main intention is to talk to the {agent} to {intent}."
    return f"Now, you are talking to the {agent}. Your situation and what you want: {intent.strip()}"


def _sentence(text: str) -> str:
    t = text.strip()
    return f"{t} " if t else ""


def selftalk_seed(cfg: SelfTalkConfig, wf: Workflow, conv_id: str) -> Seed:
    """One dialogue's scenario, drawn from its id: the client's persona and intent, the
    agent's persona."""
    rng = random.Random(conv_id)
    persona = rng.choice(cfg.personas)
    intent = rng.choice(cfg.intents.get(wf.name) or [default_intent(wf)])
    agent_persona = rng.choice(cfg.agent_personas) if cfg.agent_personas else ""
    return Seed(
        id=stable_hash("workflow", wf.name),
        messages=[],
        persona=persona,
        context={
            "workflow": wf,
            "agent": wf.agent,
            "intent_clause": intent_clause(wf.agent, intent),
            "agent_persona": agent_persona,
            "task": cfg.agent_tasks.get(wf.name) or agent_task(wf),
        },
        meta={"workflow": wf.name, "workflow_agent": wf.agent, "intent": intent, "agent_persona": agent_persona},
    )


CLIENT_NAMES = ("client", "user", "customer", "human")
AGENT_NAMES = ("agent", "assistant")


def role_names(wf: Workflow, role: Literal["agent", "client"]) -> tuple[str, ...]:
    """The labels a model writes when it speaks as `role`: the workflow's agent character
    ("shop keeper") and the generic role words."""
    return (wf.agent.strip(), *AGENT_NAMES) if role == "agent" else CLIENT_NAMES


def _stops(names: tuple[str, ...]) -> tuple[str, ...]:
    """Stop strings for a generation: each name as a label, in the casings models write."""
    return tuple(dict.fromkeys(f"{v}:" for n in names if n for v in (n, n.capitalize(), n.title(), n.upper())))


def cut_at_role_name(text: str, names: tuple[str, ...]) -> tuple[str, bool]:
    """The paper's stop on the other role's name (models tend to write the whole dialogue):
    the turn up to where it starts speaking as the other role ("... Agent: Sure, ..."),
    and whether it was cut. A turn that *opens* with the label is left to the role-flip rule."""
    alts = "|".join(re.escape(n) for n in sorted({n for n in names if n}, key=len, reverse=True))
    m = re.search(rf"(?<![\w'])(?:{alts})\s*:", text, re.I) if alts else None
    if m is None or not text[: m.start()].strip():
        return text, False
    return text[: m.start()].rstrip(), True


def _with_stops(llm: LLM, names: tuple[str, ...]) -> Any:
    return llm.params.model_copy(update={"stop": tuple(dict.fromkeys((*llm.params.stop, *_stops(names))))})


class SelfTalkClient(PromptedUser):
    """The paper's client (a PromptedUser) whose generation stops on the agent's name and
    whose turn is cut there if the backend ignored the stop."""

    async def next_turn(self, state: ConvState) -> UserTurn:
        names = role_names(state.context["workflow"], "agent") if "workflow" in state.context else AGENT_NAMES
        comp = await self.llm.complete(
            self.messages(state), params=_with_stops(self.llm, names), sample_index=sample_index(state)
        )
        if not comp.ok:
            return UserTurn(stop="error", meta={"error": comp.error})
        text, cut = cut_at_role_name(comp.text.strip(), names)
        told = (*re.split(r"\{[^{}]*\}", self.system), re.sub(r"\{[^{}]*\}", " ", self.first_turn))
        meta = {**usage_meta([comp]), **({"cut_at_role_name": True} if cut else {})}
        return UserTurn(text=text, meta=meta, instructions=told)


def client_simulator(cfg: ModeConfig, llm: LLM) -> PromptedUser:
    """The paper's client: its prompt once, as the system message; no instruction after the
    history (the agent opens, so the swapped history already starts with a user message).
    Its turn stops on the agent's name (App. A.2)."""
    return SelfTalkClient(llm, CLIENT_SYSTEM, "", instruction=None)


@dataclass
class StepState:
    """Where the agent is in its workflow: the step it was told to say and the instruction."""

    step: str | None
    instruction: str
    ending_said: bool


class WorkflowAgent:
    """The agent policy: a chat model playing the workflow's service character."""

    def __init__(
        self,
        cfg: SelfTalkConfig,
        agent: LLM,
        picker: LLM | None = None,
        end_check: LLM | None = None,
        judge: LLM | None = None,
    ) -> None:
        self.cfg = cfg
        self.llm = agent
        self.picker = picker
        self.end_check = end_check
        self.judge = judge
        self.model_id = agent.model_id

    @staticmethod
    def _workflow(state: ConvState) -> Workflow:
        wf: Workflow = state.context["workflow"]
        return wf

    def _steps(self, state: ConvState) -> StepState:
        st = state.context.get("steps")
        if st is None:
            wf = self._workflow(state)
            start = wf.steps[wf.start]
            st = state.context["steps"] = StepState(wf.start, SAY.format(say=start.say), start.is_ending)
        assert isinstance(st, StepState)
        return st

    def messages(self, state: ConvState) -> list[dict[str, str]]:
        wf = self._workflow(state)
        system = AGENT_SYSTEM.format(
            agent=wf.agent, persona=_sentence(state.context.get("agent_persona", "")), task=state.context["task"]
        )
        turns = chat_turns(state.plain(), opening=AGENT_OPENING, instruction=self._steps(state).instruction)
        return [{"role": "system", "content": system}, *turns]

    async def next_turn(self, state: ConvState) -> AssistantTurn:
        st = self._steps(state)
        names = role_names(self._workflow(state), "client")
        comp = await self.llm.complete(
            self.messages(state), params=_with_stops(self.llm, names), sample_index=sample_index(state)
        )
        if not comp.ok:
            return AssistantTurn(error=comp.error or "request failed")
        text, cut = cut_at_role_name(comp.text.strip(), names)  # the paper's stop on the client's name
        meta = {"step": st.step, "instruction": st.instruction, **completion_meta(comp)}
        return AssistantTurn(text=text, meta={**meta, **({"cut_at_role_name": True} if cut else {})})

    async def after_assistant_turn(self, state: ConvState) -> Termination | None:
        return Termination.ENDED if self._steps(state).ending_said else None

    async def after_user_turn(self, state: ConvState, text: str) -> Termination | None:
        wf, st = self._workflow(state), self._steps(state)
        if self.end_check is not None and await self._says_end(state, text):
            return Termination.END_CHECK
        choice = await self.pick_option(state, text) if st.step in wf.steps else None
        if choice is None:  # none of the above: stay at the step
            st.instruction = NATURAL
            if st.step in wf.steps and wf.steps[st.step].is_ending:
                return Termination.ENDED
            return None
        assert st.step is not None
        opt = wf.steps[st.step].options[choice]
        if opt.next:
            nxt = wf.steps[opt.next]
            st.step, st.instruction, st.ending_said = opt.next, SAY.format(say=nxt.say), nxt.is_ending
        else:
            st.step, st.instruction, st.ending_said = f"{st.step}#{choice}", SAY.format(say=opt.end), True
        return None

    async def _says_end(self, state: ConvState, text: str) -> bool:
        assert self.end_check is not None
        wf = self._workflow(state)
        excerpt = render_dialogue(
            [state.plain()[-1], {"role": "user", "content": text}], names={"assistant": wf.agent, "user": "client"}
        )
        res = await self.end_check.structured(
            [{"role": "user", "content": END_CHECK_PROMPT.format(excerpt=excerpt)}],
            DialoguePart,
            sample_index=sample_index(state),
        )
        return res.value is not None and res.value.part == "end"

    async def pick_option(self, state: ConvState, utterance: str) -> int | None:
        """The option the client's reply takes: the LLM picker where options carry text (the
        default `auto`, and `llm`), ROUGE-L where they don't (or `rouge`). "None of the
        above" takes an any-reply option if the step has one, else stays."""
        wf, st = self._workflow(state), self._steps(state)
        assert st.step is not None
        options = wf.steps[st.step].options
        texts = [(i, o.answer) for i, o in enumerate(options) if o.answer]
        anyone = next((i for i, o in enumerate(options) if o.answer is None), None)
        fallback = anyone if utterance.strip() else None
        if texts and self.picker is not None and self.cfg.picker != "rouge":
            picked = await self._llm_pick(state, utterance, [t for _, t in texts])
            return texts[picked][0] if picked is not None else fallback
        scored = [(rouge_l(utterance, t), i) for i, t in texts]
        if scored:
            best, i = max(scored)
            if best >= self.cfg.picker_threshold:
                return i
        return fallback

    async def _llm_pick(self, state: ConvState, utterance: str, answers: list[str]) -> int | None:
        """The paper's structured prompt: numbered options plus "None of the above" (None)."""
        assert self.picker is not None
        listing = "\n".join(f"{n}. {t}" for n, t in enumerate(answers, 1))
        listing += f"\n{len(answers) + 1}. None of the above"
        res = await self.picker.structured(
            [{"role": "user", "content": PICKER_PROMPT.format(utterance=utterance, options=listing)}],
            Choice,
            sample_index=sample_index(state),
        )
        if res.value is not None and 1 <= res.value.option <= len(answers):
            return res.value.option - 1
        return None

    async def evaluate(self, state: ConvState) -> dict[str, Any]:
        """The subgoal tracker's depth and success, and the judge's consistency if one is set."""
        wf = self._workflow(state)
        agent_utts = [m["content"] for m in state.messages if m["role"] == "assistant"]
        evaluation = track(wf, agent_utts, order=self.cfg.tracker_order)
        evaluation["order"] = self.cfg.tracker_order
        if self.judge is not None and agent_utts:
            judge = self.judge
            persona, task = _sentence(state.context.get("agent_persona", "")), state.context["task"]
            verdicts = await asyncio.gather(
                *(
                    judge.structured(
                        [
                            {
                                "role": "user",
                                "content": CONSISTENCY_PROMPT.format(
                                    agent=wf.agent, persona=persona, task=task, utterance=u
                                ),
                            }
                        ],
                        InCharacter,
                        sample_index=sample_index(state, i),
                    )
                    for i, u in enumerate(agent_utts)
                )
            )
            judged = [v.value.in_character for v in verdicts if v.value is not None]
            evaluation["character_consistency"] = round(sum(judged) / len(judged), 4) if judged else None
        keys = ("depth", "relative_depth", "success", "path", "order", "character_consistency")
        return {"workflow_eval": {k: evaluation[k] for k in keys if k in evaluation}}


def selftalk_engine(
    cfg: SelfTalkConfig,
    client: LLM,
    agent: LLM,
    picker: LLM | None = None,
    end_check: LLM | None = None,
    judge: LLM | None = None,
) -> Engine:
    """The engine for one self-talk loop: the client simulator against the workflow agent;
    the agent opens, a dialogue ends on an agent turn or on the client's closing turn."""
    settings = EngineSettings(
        mode="selftalk",
        max_turns=cfg.max_turns,
        stop=cfg.stop,
        opener="assistant",
        keep_closing_turn=True,
        model_keys=("client_model", "agent_model"),
    )
    mode: SimulatorMode[ModeConfig] = get_mode("selftalk", "selftalk")  # mypy: SelfTalkConfig is a ModeConfig
    client_sim = mode.build(cfg, client, None)
    return Engine(settings, client_sim, WorkflowAgent(cfg, agent, picker, end_check, judge))
