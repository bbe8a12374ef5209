"""Run directories: manifest, resumable append-only outputs, cache and usage."""

from .rundir import RecordStore, RunDir, config_fingerprint

__all__ = ["RecordStore", "RunDir", "config_fingerprint"]
