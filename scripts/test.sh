#!/usr/bin/env bash
# Set up, then run the whole test suite (offline; tiny models are built by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy src
.venv/bin/python -m pytest -q "$@"
