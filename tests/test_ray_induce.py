"""Induction's LLM stages (extract, abstract) on the Ray executor: the same records and the
same library as a local run (a one-machine Ray instance with 2 workers; the two-node cluster
tests of the executor itself are in test_ray.py)."""

from __future__ import annotations

import hashlib
import json

import pytest

from dialforge.induce import InduceConfig, induce
from dialforge.llm import backend_config
from dialforge.testing import FakeOpenAIServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'dialforge[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def _reply(body):
    """Synthetic strategies chosen by a hash of the turn: deterministic, a few families."""
    text = body["messages"][-1]["content"]
    h = int(hashlib.sha1(text.encode()).hexdigest(), 16)
    if "analysis" in json.dumps(body["response_format"]):
        return json.dumps({"analysis": "synthetic", "strategy": f"Ask about synthetic aspect {h % 5}"})
    return json.dumps({"strategy": f"Synthetic high-level strategy {h % 7}"})


def _cfg(data_dir, url, **kw):
    return InduceConfig(
        dialogues=[str(data_dir / "oasst/en_100_tree.jsonl")],
        format="oasst",
        max_dialogues=80,
        model=backend_config(model="m", base_url=url),
        concurrency=4,
        **kw,
    )


def test_induce_on_ray_writes_what_a_local_run_writes(ray_local, data_dir, tmp_path):
    with FakeOpenAIServer(reply=_reply) as srv:
        local = induce(_cfg(data_dir, srv.base_url), tmp_path / "local", progress=False)
        served = srv.served
        on_ray = induce(_cfg(data_dir, srv.base_url, executor={"kind": "ray", "address": "auto"}), tmp_path / "ray")
        assert srv.served == 2 * served  # the Ray run made every call once (its own cache)
    for name in ("extracted.jsonl", "abstracted.jsonl", "assignments.jsonl", "originals.jsonl"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert [s.model_dump() for s in on_ray.strategies] == [s.model_dump() for s in local.strategies]
    manifest = json.loads((tmp_path / "ray/manifest.json").read_text())
    assert manifest["stages"]["extract"]["ray"]["blocks"] >= 1 and manifest["stages"]["abstract"]["ray"]["blocks"] >= 1
    usage = json.loads((tmp_path / "ray/usage.json").read_text())
    assert usage["stages"]["extract"]["m"]["calls"] == local.counts["distinct_turns"]
