#!/usr/bin/env bash
# Record the exact versions the test suite just passed with into constraints.txt (run it after
# a green `scripts/test.sh` or `scripts/test-latest.sh`). torch and its CUDA/triton wheels are
# left out: setup.sh picks the CPU or CUDA build of torch itself.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
{
  echo "# Exact versions the dialforge test suite passed with ($(date -u +%Y-%m-%d), $("$VENV/bin/python" -V))."
  echo "# Used by scripts/setup.sh and CI: pip install -c constraints.txt -e '.[train,dev]'."
  echo "# Regenerate with scripts/freeze-constraints.sh after a green run."
  "$VENV/bin/python" -m pip --disable-pip-version-check freeze --exclude-editable \
    | grep -viE '^(dialforge|torch|triton|nvidia-[a-z0-9-]+)(==| @)' | grep -v '^-e ' | LC_ALL=C sort -f
} > constraints.txt
echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) packages)"
