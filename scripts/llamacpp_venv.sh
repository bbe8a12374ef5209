#!/usr/bin/env bash
# Set up .venv-llamacpp: llama-cpp-python's OpenAI-compatible server, for the real-server tests
# (tests/test_real_server.py). Its own venv, so its dependencies (fastapi, uvicorn, its numpy
# pin) never touch .venv. Idempotent: an existing working venv is kept.
#
# The wheel is built once from the sdist (~5-6 min on 2 idle cores, 20+ on a busy one) with
# portable CPU flags and kept in a wheel folder keyed by version and flags
# (~/.cache/dialforge/llamacpp-wheels/KEY; LLAMA_WHEELS=DIR to use another), so a later set-up
# is a plain install. Not pip's own wheel cache: it does not know CMAKE_ARGS, and a
# -march=native wheel built on a VM whose CPU reports AMX (this one) crashes with a general
# protection fault in libggml-cpu at the first token.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LLAMA_VENV:-.venv-llamacpp}
VERSION=${LLAMA_CPP_VERSION:-0.3.36}
PY=${PYTHON:-python3}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
export CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}
KEY=$(printf '%s %s' "$VERSION" "$CMAKE_ARGS" | sha1sum | cut -c1-12)
WHEELS=${LLAMA_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/dialforge/llamacpp-wheels/$KEY}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp.server.app" 2>/dev/null; then
  echo "llama-cpp-python server: $VENV is ready"
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip >/dev/null
if ! ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "==> building llama-cpp-python $VERSION into $WHEELS (CMAKE_ARGS=$CMAKE_ARGS; minutes)"
  mkdir -p "$WHEELS"
  "$VENV/bin/pip" wheel --no-deps --no-cache-dir "llama-cpp-python==$VERSION" -w "$WHEELS"
fi
echo "==> installing llama-cpp-python[server] $VERSION into $VENV"
"$VENV/bin/pip" install --find-links "$WHEELS" "llama-cpp-python[server]==$VERSION"
"$VENV/bin/python" -c "import llama_cpp.server.app; import llama_cpp; print('llama-cpp-python', llama_cpp.__version__, 'in $VENV')"
