#!/usr/bin/env bash
# The test suite on the newest release of every dependency, in its own venv (.venv-latest), so
# the next upstream break (like typer vendoring click) is seen here before a user meets it.
# Green? `VENV=.venv-latest scripts/freeze-constraints.sh` records the new set as tested.
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv-latest} CONSTRAINTS=
rm -rf "$VENV"  # fresh every time: the newest release of everything (torch stays the pinned build)
./scripts/setup.sh
"$VENV/bin/python" -m pip --disable-pip-version-check -q list --format=freeze \
  | grep -iE '^(typer|click|transformers|trl|peft|datasets|sentence-transformers|pydantic|aiohttp|torch)=' || true
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$VENV/bin/ruff" check src tests benchmarks
"$VENV/bin/mypy" src
"$VENV/bin/python" -m pytest -q "$@"
