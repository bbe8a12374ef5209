# The names `induce/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .cluster import cluster, exact_threshold_clustering, leader_cluster
from .config import DEFAULT_EMBEDDER, InduceConfig
from .embed import Embedder
from .filter import FilterConfig, filter_dialogues
from .library import SourceTurn, Strategy, StrategyLibrary
from .pipeline import induce, induce_async

__all__ = [
    "DEFAULT_EMBEDDER",
    "Embedder",
    "FilterConfig",
    "InduceConfig",
    "SourceTurn",
    "Strategy",
    "StrategyLibrary",
    "cluster",
    "exact_threshold_clustering",
    "filter_dialogues",
    "induce",
    "induce_async",
    "leader_cluster",
]
