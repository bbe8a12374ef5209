"""One self-play engine for every mode: strict chat templates, self-talk's paper prompts and
option picker, the simulator-mode registry, the termination-reason enum, shared backends."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys

import jinja2
import pytest
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dialforge.llm import LLM
from dialforge.simulate import Engine, SimulateConfig, make_simulator, swap_roles
from dialforge.simulate.engine import Seed
from dialforge.simulate.reasons import Termination
from dialforge.testing import FakeOpenAIServer, ScriptedChatModel
from dialforge.workflows import SelfTalkConfig, import_star, load_workflow, selftalk_engine, selftalk_seed
from dialforge.workflows.agent import NATURAL
from dialforge.workflows.selftalk import with_star_scenarios

# A Mistral / Llama-2 style template: it raises unless the messages (after an optional
# system message) start with a user message and alternate.
STRICT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{%- set system = messages[0]['content'] + '\\n\\n' %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set system = '' %}{%- set loop_messages = messages %}"
    "{%- endif %}<s>"
    "{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif %}"
    "{%- if message['role'] == 'user' %}"
    "{{- '[INST] ' + (system if loop.first else '') + message['content'] + ' [/INST]' }}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + '</s>' }}"
    "{%- else %}{{- raise_exception('Only user and assistant roles are supported') }}{%- endif %}"
    "{%- endfor %}"
)


def _raise(msg: str) -> None:
    raise jinja2.exceptions.TemplateError(msg)


def render_strict(messages: list[dict[str, str]]) -> str:
    env = ImmutableSandboxedEnvironment()
    env.globals["raise_exception"] = _raise
    return env.from_string(STRICT_TEMPLATE).render(messages=messages)


def test_strict_template_raises_on_non_alternation():
    with pytest.raises(jinja2.exceptions.TemplateError, match="must alternate"):
        render_strict([{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}])
    with pytest.raises(jinja2.exceptions.TemplateError, match="must alternate"):
        render_strict([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    assert render_strict([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == (
        "<s>[INST] q [/INST] a</s>"
    )


def _counter(prefix):
    """Distinct synthetic turns: the prefix, a counter and random letters (no dialogue data)."""
    import random

    rng = random.Random(prefix)
    n = iter(range(1000))
    letters = "abcdefghijklmnopqrstuvwxyz"
    return lambda req: (
        f"{prefix} {next(n)} "
        + " ".join("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(10))
    )


Q = "How do plants turn sunlight into sugar?"


@pytest.mark.parametrize(
    "seed_msgs",
    [
        [{"role": "user", "content": Q, "meta": {"seed": True}}],
        [
            {"role": "user", "content": Q, "meta": {"seed": True}},
            {"role": "assistant", "content": "Synthetic seed answer about leaves.", "meta": {"seed": True}},
        ],
        [],
    ],
    ids=["question", "exchange", "free"],
)
@pytest.mark.parametrize("mode", ["persona", "socratic"])
def test_prompted_simulator_histories_render_with_a_strict_template(mode, seed_msgs):
    cfg = SimulateConfig(
        mode=mode,
        personas=["a synthetic tester"],
        seeds={"free": 1},
        user={"model": "sim"},
        assistant={"model": "asst"},
        max_turns=4,
    )
    user, asst = ScriptedChatModel(_counter("Ask"), "sim"), ScriptedChatModel(_counter("Say"), "asst")
    engine = Engine(cfg, make_simulator(cfg, LLM(user)), LLM(asst))
    conv = asyncio.run(engine.run_one("c0ffee", Seed("s", seed_msgs, Q if seed_msgs else None), 0))
    assert conv.meta["termination_reason"] == "max_turns"
    assert [m.role for m in conv.messages] == ["user", "assistant"] * 4
    assert len(user.requests) == 4 - sum(m["role"] == "user" for m in seed_msgs)
    for req in user.requests + asst.requests:
        render_strict(req.messages)  # raises on a history that starts with the assistant or repeats a role
    # the instruction comes after the history, in the last user message
    assert all(r.messages[-1]["role"] == "user" for r in user.requests)


def test_swap_roles_one_way():
    msgs = [
        {"role": "system", "content": "the assistant's own instructions"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
    ]
    # plain: what a trained simulator saw in training (system messages always dropped)
    assert swap_roles(msgs) == [{"role": "assistant", "content": "u1"}, {"role": "user", "content": "a1"}]
    strict = swap_roles(msgs + [{"role": "assistant", "content": "a2"}], opening="open", instruction="next")
    assert strict == [
        {"role": "user", "content": "open"},
        {"role": "assistant", "content": "u1"},
        {"role": "user", "content": "a1\n\na2\n\nnext"},
    ]


# A hand-written workflow in the style of the paper's shop-keeper example (not dialogue data).
SHOP = {
    "name": "buy_longsword",
    "topic": "buy a longsword",
    "agent": "shop keeper",
    "start": "greet",
    "steps": {
        "greet": {
            "say": "Good day, how can I help you?",
            "options": [
                {"answer": "I want to buy a longsword", "next": "budget"},
                {"answer": "I am just browsing", "end": "Let me know if you need anything."},
            ],
        },
        "budget": {"say": "What is your budget?", "options": [{"answer": None, "next": "done"}]},
        "done": {"say": "Here is your longsword. Glad to be of service, goodbye!"},
    },
}


def _agent(req):
    m = re.search(r"Now, you must say: (.*)$", req.messages[-1]["content"], re.S)
    return m.group(1) if m else "Hmm, tell me more about that."


def _shop(tmp_path, **kw):
    p = tmp_path / "shop.yaml"
    p.write_text(yaml.safe_dump(SHOP))
    wf = load_workflow(p)
    return wf, SelfTalkConfig(workflows=str(p), client={"model": "client"}, agent={"model": "agent"}, **kw)


def _selftalk(cfg, wf, client, agent, picker=None, conv_id="5e1f7a1c"):
    engine = selftalk_engine(cfg, LLM(client), LLM(agent), picker)
    return asyncio.run(engine.run_one(conv_id, selftalk_seed(cfg, wf, conv_id), 0))


def test_selftalk_prompts_as_the_paper(tmp_path):
    wf, cfg = _shop(tmp_path, max_turns=5, agent_personas=["I am a synthetic test persona."])
    client = ScriptedChatModel(["I want to buy a longsword.", "Ten gold coins.", "Thanks!"], "client")
    agent = ScriptedChatModel(_agent, "agent")
    conv = _selftalk(cfg, wf, client, agent)
    assert conv.meta["termination_reason"] == "ended" and conv.meta["workflow_eval"]["success"]
    assert conv.meta["agent_persona"] == "I am a synthetic test persona."
    assert conv.meta["intent"] == "buy a longsword" and conv.meta["persona"] in cfg.personas
    # agent: service character + persona + task from the workflow, instruction after the history
    for req in agent.requests:
        system = req.messages[0]["content"]
        assert system.startswith("You are playing the shop keeper. I am a synthetic test persona. ")
        assert "You help people who come to you to buy a longsword." in system and "Now, you must" not in system
        assert req.messages[-1]["content"].endswith(req.messages[-1]["content"].split("\n\n")[-1])
        assert re.search(r"Now, you must say: [^\n]+$", req.messages[-1]["content"])
        render_strict(req.messages)
    assert (
        agent.requests[1].messages[-1]["content"]
        == "I want to buy a longsword.\n\nNow, you must say: What is your budget?"
    )
    # client: character + persona + intent, once, in the system prompt; continues the history
    c0 = client.requests[0].messages
    assert c0[0]["content"].startswith(f"You are playing {conv.meta['persona']}. Now, your main intention is to talk")
    assert "to talk to the shop keeper to buy a longsword." in c0[0]["content"]
    assert c0[1:] == [{"role": "user", "content": "Good day, how can I help you?"}]
    for req in client.requests:
        render_strict(req.messages)


def test_selftalk_prompts_with_star_tasks(tmp_path, data_dir):
    wfs, _ = import_star(data_dir / "star/tasks")
    wf = next(w for w in wfs if w.name == "ride_book")
    cfg = with_star_scenarios(
        SelfTalkConfig(
            workflows=str(tmp_path),
            client={"model": "client"},
            agent={"model": "agent"},
            star_dialogues=str(data_dir / "star/star_dialogues_subset.jsonl"),
            max_turns=2,
        )
    )
    assert cfg.agent_tasks["ride_book"] == "Help the user book a ride."  # tutorial pointer removed
    assert cfg.agent_tasks["weather"] == "Help the user."  # flow-chart pointer and per-dialogue facts removed
    client = ScriptedChatModel(_counter("Client"), "client")
    agent = ScriptedChatModel(_agent, "agent")
    conv = _selftalk(cfg, wf, client, agent)
    intent = conv.meta["intent"]
    assert intent in cfg.intents["ride_book"] and not intent[0].islower()
    system = client.requests[0].messages[0]["content"]
    assert f"Now, you are talking to the ride book assistant. Your situation and what you want: {intent}" in system
    assert " to You " not in system and " to you are " not in system.lower()
    assert "Help the user book a ride." in agent.requests[0].messages[0]["content"]


def test_llm_picker_is_the_default_where_options_carry_text(tmp_path):
    wf, cfg = _shop(tmp_path, max_turns=4)
    assert cfg.picker == "auto"
    picks = iter([3, 1])  # "none of the above", then the first option

    def picker_reply(req):
        return json.dumps({"option": next(picks)})

    picker = ScriptedChatModel(picker_reply, "picker")
    client = ScriptedChatModel(["Do you sell bread?", "A longsword, please.", "Five coins."], "client")
    agent = ScriptedChatModel(_agent, "agent")
    conv = _selftalk(cfg, wf, client, agent, LLM(picker))
    listing = picker.requests[0].messages[0]["content"]
    assert "1. I want to buy a longsword\n2. I am just browsing\n3. None of the above" in listing
    assert "Take the following sentence: Do you sell bread?" in listing
    steps = [m.meta["step"] for m in conv.messages if m.role == "assistant"]
    instructions = [m.meta["instruction"] for m in conv.messages if m.role == "assistant"]
    # none of the above: stay at the step with a natural reply; then the picked option moves on;
    # the budget step's only option takes any reply without asking the picker
    assert steps == ["greet", "greet", "budget", "done"] and instructions[1] == NATURAL
    assert len(picker.requests) == 2
    assert conv.meta["termination_reason"] == "ended"


def test_rouge_picker_where_asked(tmp_path):
    wf, cfg = _shop(tmp_path, max_turns=3, picker="rouge")
    picker = ScriptedChatModel(lambda r: json.dumps({"option": 2}), "picker")
    client = ScriptedChatModel(["Hello! I want to buy a longsword.", "Five coins."], "client")
    conv = _selftalk(cfg, wf, client, ScriptedChatModel(_agent, "agent"), LLM(picker))
    assert not picker.requests
    assert [m.meta["step"] for m in conv.messages if m.role == "assistant"] == ["greet", "budget", "done"]


@pytest.mark.slow
def test_mode_registry_drives_config_and_cli():
    from dialforge.simulate.modes import mode_names, registry

    MODES = registry()

    assert mode_names("simulate") == ["strategy", "socratic", "persona"]
    assert "selftalk" in MODES and "selftalk" not in mode_names("simulate")
    with pytest.raises(ValueError, match=r"unknown simulator mode 'selftalk' \(known: strategy, socratic, persona\)"):
        SimulateConfig(mode="selftalk", seeds={"free": 1}, user={"model": "u"}, assistant={"model": "a"})
    with pytest.raises(ValueError, match="mode persona needs a list of `personas`"):
        SimulateConfig(mode="persona", seeds={"free": 1}, user={"model": "u"}, assistant={"model": "a"})
    r = subprocess.run([sys.executable, "-m", "dialforge.cli", "modes"], capture_output=True, text=True)
    assert r.returncode == 0 and all(name in r.stdout for name in MODES)


def test_termination_reasons_are_one_string_enum():
    assert Termination("max_turns") is Termination.MAX_TURNS
    assert json.dumps({"r": Termination.END_CHECK}) == '{"r": "end_check"}'
    assert f"{Termination.GOODBYE}" == "goodbye"


def test_selftalk_roles_on_one_endpoint_share_one_backend(tmp_path):
    from dialforge.llm import BackendPool
    from dialforge.workflows.selftalk import selftalk_async

    p = tmp_path / "shop.yaml"
    p.write_text(yaml.safe_dump(SHOP))

    def reply(body):
        text = body["messages"][-1]["content"]
        if "JSON" in text:  # picker, end check, consistency judge
            return json.dumps({"option": 1, "part": "middle", "in_character": True})
        m = re.search(r"Now, you must say: (.*)$", text, re.S)
        return m.group(1) if m else "I want to buy a longsword."

    with FakeOpenAIServer(reply=reply) as srv:
        role = {"model": "m", "base_url": srv.base_url}
        cfg = SelfTalkConfig(
            workflows=str(p),
            client=role,
            agent={**role, "params": {"temperature": 0.1}},
            end_check=role,
            consistency_judge=role,
            dialogues_per_workflow=2,
            max_turns=3,
        )

        async def go():
            async with BackendPool() as pool:  # handed in: the pool counts what it built
                return await selftalk_async(cfg, tmp_path / "run", progress=False, pool=pool), len(pool)

        summary, built = asyncio.run(go())
    assert built == 1  # client, agent, picker, end check and judge: one backend
    assert summary["loops"][0]["dialogues"] == 2
    rows = [json.loads(x) for x in (tmp_path / "run/loop-0/dialogues.jsonl").read_text().splitlines()]
    for r in rows:
        meta = r["meta"]
        assert meta["mode"] == "selftalk" and meta["termination_reason"] in set(Termination)
        assert {"workflow_eval", "persona", "intent", "sample_index", "agent_model", "client_model"} <= set(meta)
        assert meta["workflow_eval"]["character_consistency"] == 1.0
