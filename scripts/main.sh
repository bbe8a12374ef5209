#!/usr/bin/env bash
# Set up, then run the main job on the bundled real data, offline: induce strategies from
# OpenAssistant threads -> simulate (strategy, persona, socratic) -> score -> filter -> dedup
# -> export -> report. With no model hub and no server it runs on a tiny local model (built
# once); add `--base-url URL --model NAME` (or `--model PATH`) to use a real model.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/dialforge run examples/quickstart.yaml --out "${OUT:-runs/quickstart}" "$@"
