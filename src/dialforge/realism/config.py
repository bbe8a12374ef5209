"""The realism card's settings: a light module (pydantic only), so configs that embed it
(the pipeline's `realism:` stage) do not import the measuring code and scikit-learn."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..induce.config import DEFAULT_EMBEDDER, ReadFormat


class RealismConfig(BaseModel):
    """One config for the Python API, the CLI and the pipeline stage."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="seed for every sample, fold and bootstrap")
    max_turns: int = Field(3000, ge=10, description="user turns per side for the embedding figures (sampled)")
    first_turns: int = Field(1000, ge=2, description="opening turns per side for first-turn diversity")
    folds: int = Field(5, ge=2, le=20)
    bootstrap: int = Field(200, ge=0, description="bootstrap resamples for the 95% intervals (0: none)")
    mauve_clusters: int | None = Field(None, ge=2, description="default: min(n_sim, n_real) / 10")
    embedder: str = Field(DEFAULT_EMBEDDER, description="sentence-embedding model")
    cache_dir: str | None = Field(None, description="embedding cache folder (shared with induce/score)")
    simulator_model: str | None = Field(None, description="in-process simulator: held-out perplexity")
    base_model: str | None = Field(None, description="its base model (default: from train_summary.json)")
    template: str | None = Field(None, description="chat template for perplexity (default: the simulator's)")
    perplexity_conversations: int = Field(200, ge=1)
    max_length: int = Field(1024, ge=16)
    sim_format: ReadFormat = "auto"
    real_format: ReadFormat = "auto"
