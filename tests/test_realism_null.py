"""The realism card's nulls deal whole conversation families, so real data is not unlike
itself; and the SIM side counts only simulated user turns (seed turns are real people's)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dialforge.conversation import Conversation
from dialforge.induce.embed import Embedder
from dialforge.io import read_conversations
from dialforge.realism import realism, split_heldout
from dialforge.realism.distances import continuous_distance
from dialforge.realism.divergence import mauve
from dialforge.realism.features import conversation_groups, turns_per_conversation, user_turns
from dialforge.realism.measure import distances
from dialforge.realism.null import family_masks

pytestmark = pytest.mark.timeout(1800)


def test_family_masks_deal_whole_families_and_keep_the_family_count():
    a = ["t1", "t1", "t1", "t2", "s3"]
    b = ["t4", "t4", "s5", "s6", "s7", "s8"]
    masks = list(family_masks(a, b, 200, seed=0))
    pooled = np.asarray(a + b)
    for m in masks:
        for fam in set(pooled):  # a family is never split between the sides
            assert len(set(m[pooled == fam].tolist())) == 1
        assert len(set(pooled[m].tolist())) == 3  # A had 3 families, so each deal gives A 3
    assert len({tuple(m) for m in masks}) > 20
    # the null's spread is wider with big families than when every item is its own family
    vals = np.r_[np.full(30, 1.0), np.full(30, 9.0)]
    fam_groups = [f"f{i // 10}" for i in range(60)]
    turn = continuous_distance(vals[:30], vals[30:], n_boot=200, seed=0)
    fam = continuous_distance(vals[:30], vals[30:], n_boot=200, seed=0, groups=(fam_groups[:30], fam_groups[30:]))
    assert turn.null95 is not None and fam.null95 is not None
    assert turn.null95 < 0.4 and fam.null95 == pytest.approx(1.0)


def test_mauve_null_by_family_is_lower_than_by_turn():
    """Points of a family sit together (one topic): dealt by family, the null spreads wider."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(40, 16))
    x = np.vstack([c + 0.05 * rng.normal(size=(10, 16)) for c in centers])  # 40 families of 10
    groups = [f"g{i // 10}" for i in range(400)]
    p, q, gp, gq = x[::2], x[1::2], groups[::2], groups[1::2]
    _, by_turn, _, _ = mauve(p, q, seed=0, n_boot=100)
    _, by_family, _, _ = mauve(p, q, seed=0, n_boot=100, p_groups=gp, q_groups=gq)
    assert by_turn is not None and by_family is not None and by_family < by_turn - 0.05


@pytest.fixture(scope="module")
def pool(data_dir) -> list[Conversation]:
    convs = read_conversations(data_dir / "oasst/en_100_tree.jsonl")
    convs += read_conversations(data_dir / "oasst/realistic_seed_data.json")
    for line in (data_dir / "oasst/prompt_lottery_en_250_text.jsonl").read_text().splitlines():
        convs.append(Conversation.from_messages([{"role": "user", "content": json.loads(line)}]))
    return convs


def test_distances_of_real_halves_are_within_family_chance_in_most_splits(pool):
    """Two halves of one real set (split by family) stay within the family null's 95th
    percentile for each of the four distributions in at least 8 of 10 splits (measured:
    9, 8, 10, 10; the turn-by-turn null held user_turns_per_conversation in 7)."""
    inside: dict[str, int] = {}
    for seed in range(10):
        a, b = split_heldout(pool, 0.5, seed=seed, salt="halves")
        for name, d in distances(b, a, user_turns(b), user_turns(a), n_boot=200, seed=seed).items():
            assert d.ks is not None and d.null95 is not None
            inside[name] = inside.get(name, 0) + (d.ks <= d.null95)
    assert all(v >= 8 for v in inside.values()), inside


@pytest.mark.slow
def test_real_halves_land_inside_the_null_in_most_seeds(pool, tmp_path_factory):
    """MAUVE at or above its null's 5th percentile, the discriminator's AUC inside its chance
    band, in at least 4 of 5 splits (measured: MAUVE 5/5, AUC 4/5; turn-shuffled MAUVE nulls
    put real data below its own level in 3 of 3 splits)."""
    emb = Embedder(cache_dir=tmp_path_factory.mktemp("emb"))
    mauve_ok = auc_ok = 0
    for seed in range(5):
        a, b = split_heldout(pool, 0.5, seed=seed, salt="halves")
        card = realism(b, a, embedder=emb, bootstrap=100, seed=seed)
        m, d = card.mauve, card.discriminator
        assert m.mauve is not None and m.null05 is not None and d.auc is not None and d.chance95 is not None
        mauve_ok += m.mauve >= m.null05
        auc_ok += d.chance95[0] <= d.auc <= d.chance95[1]
    assert mauve_ok >= 4 and auc_ok >= 4, (mauve_ok, auc_ok)


def _seeded(real: list[Conversation]) -> list[Conversation]:
    """Synthetic SIM conversations: each opens with a real OASST exchange marked as seed
    (as the engine marks it), then obviously synthetic simulated user turns."""
    out = []
    for i, c in enumerate(real):
        body = [m for m in c.messages if m.role in ("user", "assistant")][:2]
        if len(body) < 2 or body[0].role != "user":
            continue
        msgs = [{"role": m.role, "content": m.content, "meta": {"seed": True}} for m in body]
        if i % 3:  # a third stay seed-only: they contribute nothing
            msgs += [
                {"role": "user", "content": f"synthetic follow-up number {i}?"},
                {"role": "assistant", "content": "synthetic answer"},
            ]
        out.append(Conversation.from_messages(msgs))
    return out


def test_seed_turns_are_not_counted_as_simulated(pool, data_dir, tmp_path):
    real = read_conversations(data_dir / "oasst/en_100_tree.jsonl")
    sim = _seeded(real)
    simulated = [c for c in sim if len(c.messages) > 2]
    assert 0 < len(simulated) < len(sim)
    turns = user_turns(sim, simulated_only=True)
    assert [t.text for t in turns] == [c.messages[2].content for c in simulated]  # no seed text
    assert all(t.position == 1 for t in turns)
    assert turns_per_conversation(sim, simulated_only=True) == [1] * len(simulated)
    assert len(conversation_groups(sim, simulated_only=True)) == len(simulated)
    assert len(user_turns(sim)) > len(turns)  # the seed turns are there, and would be counted
    card = realism(sim, pool, embedder=Embedder(cache_dir=tmp_path), bootstrap=0)
    assert card.sim.user_turns == len(simulated) and card.sim.conversations == len(simulated)
    assert card.distances["user_turns_per_conversation"].n_sim == len(simulated)
    assert card.distances["user_turns_per_conversation"].sim_median == 1.0
    assert card.distances["words_per_user_turn"].n_sim == len(simulated)
    assert card.first_turns.n_per_side == 0  # every simulated turn follows a seed: no opening
