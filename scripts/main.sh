#!/usr/bin/env bash
# Set up, then run the main job on the bundled real dialogues (OpenAssistant trees):
# extract every thread, convert to the canonical format, and summarise it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
OUT=${OUT:-runs/quickstart}
mkdir -p "$OUT"
.venv/bin/dialforge convert data/oasst/en_100_tree.jsonl "$OUT/oasst_threads.jsonl" --from oasst
.venv/bin/dialforge convert "$OUT/oasst_threads.jsonl" "$OUT/oasst_threads.sharegpt.json" --to sharegpt
.venv/bin/dialforge stats "$OUT/oasst_threads.jsonl"
