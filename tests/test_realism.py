"""Realism card on real data: OASST trees, OASST's HH-derived seed threads and its prompt
lottery (all vendored in data/oasst). Real vs a disjoint real split must look alike; assistant
answers posed as user turns must not; planted changes move the matching distance only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dialforge.conversation import Conversation, Message
from dialforge.errors import DialforgeError
from dialforge.induce.embed import Embedder
from dialforge.io import read_conversations, write_conversations
from dialforge.realism import RealismConfig, read_card, realism, realism_stage, split_heldout
from dialforge.realism.divergence import mauve_from_histograms
from dialforge.realism.diversity import vendi
from dialforge.realism.features import group_key, user_turns
from dialforge.realism.measure import distances

FAST = {"bootstrap": 50}
# embedding ~1,300 real turns once per module takes ~20 s on 2 idle cores; shared machines are slower
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def pool(data_dir) -> list[Conversation]:
    convs = read_conversations(data_dir / "oasst/en_100_tree.jsonl")
    convs += read_conversations(data_dir / "oasst/realistic_seed_data.json")  # its 158 threads
    for line in (data_dir / "oasst/prompt_lottery_en_250_text.jsonl").read_text().splitlines():
        convs.append(Conversation.from_messages([{"role": "user", "content": json.loads(line)}]))
    return convs


@pytest.fixture(scope="module")
def halves(pool):
    return split_heldout(pool, 0.5, seed=0)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embcache")


@pytest.fixture(scope="module")
def embedder(cache_dir) -> Embedder:
    return Embedder(cache_dir=cache_dir)


def _swap_roles(c: Conversation) -> Conversation | None:
    """Assistant answers posed as user turns (and vice versa); drops a leading non-user turn."""
    swap = {"user": "assistant", "assistant": "user"}
    msgs = [{"role": swap[m.role], "content": m.content} for m in c.messages if m.role in swap]
    while msgs and msgs[0]["role"] != "user":
        msgs = msgs[1:]
    return Conversation.from_messages(msgs, meta=c.meta) if msgs else None


def test_split_is_by_family_seeded_and_order_free(pool):
    kept, held = split_heldout(pool, 0.3, seed=7)
    assert len(kept) + len(held) == len(pool)
    assert {group_key(c) for c in kept}.isdisjoint({group_key(c) for c in held})  # OASST trees never straddle
    again_kept, again_held = split_heldout(list(reversed(pool)), 0.3, seed=7)
    assert {c.id for c in again_held} == {c.id for c in held}
    other = split_heldout(pool, 0.3, seed=8)[1]
    assert {c.id for c in other} != {c.id for c in held}
    n_fam = len({group_key(c) for c in pool})
    assert 0.2 < len({group_key(c) for c in held}) / n_fam < 0.4
    # the floor's split of the held-out part is independent of the split that made it
    floor_a, floor_b = split_heldout(held, 0.5, seed=7, salt="floor")
    assert min(len(floor_a), len(floor_b)) > len(held) / 4
    two = [Conversation.from_messages([{"role": "user", "content": f"q{i}"}]) for i in range(2)]
    assert [len(x) for x in split_heldout(two, 0.01)] == [1, 1]  # each side gets a family
    with pytest.raises(DialforgeError, match="between 0 and 1"):
        split_heldout(pool, 1.5)


@pytest.mark.slow
def test_real_vs_disjoint_real_split_is_indistinguishable(halves, embedder):
    a, b = halves
    card = realism(b, a, embedder=embedder, **FAST)
    d = card.discriminator
    assert d.auc is not None and d.auc <= 0.6, card.to_markdown()
    assert d.ci95 is not None and d.ci95[0] <= d.auc <= d.ci95[1]
    # stated sample sizes are the real ones: every distinct user turn, a balanced sample
    assert card.sim.user_turns == len(user_turns(b)) and card.real.user_turns == len(user_turns(a))
    assert d.n_per_side == min(card.sim.user_turns, card.real.user_turns) == card.mauve.n_per_side
    assert card.mauve.mauve is not None and card.mauve.mauve > 0.8
    for name, dist in card.distances.items():
        assert dist.ks is not None and dist.null95 is not None
        assert dist.ks <= dist.null95 * 1.5, name  # within chance at these sample sizes
    assert card.overall.score > 0.85
    assert set(card.overall.components) == {"indistinguishability", "mauve", "shape", "opening_diversity", "role"}


@pytest.mark.slow
def test_roles_swapped_is_detected(halves, embedder):
    a, b = halves
    swapped = [s for s in (_swap_roles(c) for c in b) if s is not None]
    card = realism(swapped, a, embedder=embedder, **FAST)
    assert card.discriminator.auc is not None and card.discriminator.auc >= 0.9, card.to_markdown()
    r = card.role_adherence
    assert r.classifier_auc is not None and r.classifier_auc > 0.8
    assert r.sim_classifier_share is not None and r.real_classifier_share is not None
    assert r.sim_classifier_share > r.real_classifier_share + 0.3
    assert r.sim_phrase_share > r.real_phrase_share
    assert card.discriminator.telltales  # named style features give it away
    assert card.overall.score < 0.7


def _longer(c: Conversation) -> Conversation:
    msgs = [
        Message(role=m.role, content=" ".join([m.content] * 3) if m.role == "user" else m.content) for m in c.messages
    ]
    return Conversation(id=c.id, messages=msgs, meta=c.meta)


def _one_exchange(c: Conversation) -> Conversation:
    return Conversation(id=c.id, messages=c.messages[:2], meta=c.meta)


def _dist(sim: list[Conversation], real: list[Conversation]) -> dict[str, float | None]:
    d = distances(sim, real, user_turns(sim), user_turns(real))
    return {k: v.ks for k, v in d.items()}


def test_planted_longer_user_turns_move_words_only(halves):
    a, b = halves
    base = _dist(b, a)
    planted = _dist([_longer(c) for c in b], a)
    assert planted["words_per_user_turn"] > base["words_per_user_turn"] + 0.4
    for unrelated in ("user_turns_per_conversation", "question_rate", "follow_up_rate"):
        assert planted[unrelated] == pytest.approx(base[unrelated], abs=1e-9), unrelated


def test_planted_one_exchange_moves_turns_only(halves):
    a, b = halves
    multi = [c for c in b if c.n_user_turns >= 1]
    base = _dist(multi, a)
    planted = _dist([_one_exchange(c) for c in multi], a)
    assert planted["user_turns_per_conversation"] > base["user_turns_per_conversation"] + 0.2
    assert abs(planted["words_per_user_turn"] - base["words_per_user_turn"]) < 0.1
    assert abs(planted["question_rate"] - base["question_rate"]) < 0.1
    assert planted["follow_up_rate"] is None  # no turn after an answer is left to measure


def test_mauve_and_vendi_definitions():
    p = np.array([0.2, 0.3, 0.5])
    assert mauve_from_histograms(p, p) == pytest.approx(1.0)
    assert mauve_from_histograms(np.array([1.0, 0.0]), np.array([0.0, 1.0])) < 0.01
    near, far = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    assert mauve_from_histograms(near, np.array([0.6, 0.4])) > mauve_from_histograms(far, np.array([0.1, 0.9]))
    from dialforge.score.metrics import embedding_diversity

    rng = np.random.default_rng(0)
    for n, d in ((30, 8), (8, 30)):  # the d x d form equals the n x n kernel form
        x = rng.normal(size=(n, d))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        assert vendi(x) == pytest.approx(embedding_diversity(x)["vendi"], rel=1e-6)
    assert vendi(np.tile(x[:1], (5, 1))) == pytest.approx(1.0)


@pytest.mark.slow
def test_cli_json_out_and_stage(halves, tmp_path, cache_dir, data_dir):
    a, b = halves
    sim = tmp_path / "sim.json"
    real = tmp_path / "real.jsonl"
    write_conversations(b, sim, "sharegpt")  # a ShareGPT file on one side
    write_conversations(a, real)
    out = tmp_path / "card"
    cmd = [sys.executable, "-m", "dialforge.cli", "realism", str(sim), "--real", str(real), "--json"]
    r = subprocess.run(
        [*cmd, "--out", str(out), "--cache-dir", str(cache_dir), "--bootstrap", "20"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
    fig = json.loads(r.stdout)
    for key in (
        "discriminator_auc",
        "mauve",
        "words_per_user_turn_ks",
        "user_turns_per_conversation_ks",
        "question_rate_ks",
        "follow_up_rate_ks",
        "first_turn_distinct2",
        "first_turn_vendi",
        "assistant_like_classifier_share",
        "overall_realism",
        "sample_sizes",
    ):
        assert key in fig, key
    card = read_card(out / "realism_card.json")
    assert card.discriminator.auc == fig["discriminator_auc"]
    assert (out / "realism_card.md").read_text().startswith("# Realism card")

    summary = realism_stage(sim, real, tmp_path / "stage", config=RealismConfig(cache_dir=str(cache_dir), bootstrap=20))
    assert Path(summary["card"]).exists() and Path(summary["floor"]).exists()
    assert summary["floor_discriminator_auc"] is not None and summary["floor_discriminator_auc"] <= 0.7

    # bad input: one line naming the file, exit 2
    empty = tmp_path / "assistant_only.jsonl"
    empty.write_text(json.dumps({"messages": [{"role": "assistant", "content": "synthetic text"}]}) + "\n")
    r = subprocess.run([*cmd[:4], str(empty), "--real", str(real)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert str(empty) in r.stderr and "no user turns" in r.stderr
    r = subprocess.run([*cmd[:4], str(sim), "--real", str(tmp_path / "missing.jsonl")], capture_output=True, text=True)
    assert r.returncode == 2 and "missing.jsonl" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_heldout_perplexity_shows_training(tiny_model_dir, data_dir, tmp_path):
    from transformers import AutoTokenizer

    from dialforge.realism.perplexity import perplexity_figure
    from dialforge.train import TrainConfig, train

    best = read_conversations(data_dir / "oasst/en_100_tree.jsonl", "oasst-best")
    train_set, heldout = split_heldout(best, 0.3, seed=0)
    data = tmp_path / "train.jsonl"
    write_conversations(train_set[:64], data)
    cfg = TrainConfig(
        kind="simulator",
        data=[str(data)],
        model=str(tiny_model_dir),
        out=str(tmp_path / "sim"),
        template="dyadic",
        lora=False,
        max_steps=20,
        learning_rate=3e-3,
        batch_size=4,
        max_length=256,
    )
    train(cfg)
    final = str(tmp_path / "sim/final")
    heldout = [c for c in heldout if sum(len(m.content) for m in c.messages) < 1500]  # never truncated
    fig = perplexity_figure(final, heldout, max_length=2048)
    assert fig.base == str(tiny_model_dir)  # found through train_summary.json
    assert fig.base_ppl is not None and fig.simulator_ppl < 0.9 * fig.base_ppl
    # the mask counts user-turn tokens plus one end token per user turn, nothing else
    tok = AutoTokenizer.from_pretrained(final)
    expected = sum(
        len(tok(m.content, add_special_tokens=False)["input_ids"]) + 1
        for c in heldout[: fig.conversations]
        for m in c.messages
        if m.role == "user"
    )
    assert fig.conversations == len(heldout) and fig.tokens == expected
