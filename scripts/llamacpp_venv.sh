#!/usr/bin/env bash
# Set up .venv-llamacpp: llama-cpp-python's OpenAI-compatible server, for the real-server tests
# (tests/test_real_server.py). Its own venv, so its dependencies (fastapi, uvicorn, its numpy
# pin) never touch .venv. Idempotent: an existing working venv is kept.
#   LLAMA_WHEELS=DIR   also look for a built llama_cpp_python wheel in DIR (pip's own wheel
#                      cache is used either way, so a second build is an install; that cache
#                      does not know CMAKE_ARGS: clear it with `pip cache remove llama_cpp_python`
#                      after a build with other flags)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LLAMA_VENV:-.venv-llamacpp}
SPEC="llama-cpp-python[server]==${LLAMA_CPP_VERSION:-0.3.36}"
PY=${PYTHON:-python3}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp.server.app" 2>/dev/null; then
  echo "llama-cpp-python server: $VENV is ready"
  exit 0
fi
echo "==> setting up $VENV ($SPEC; building from source takes ~5-6 min on 2 cores the first time)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip >/dev/null
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
# Portable CPU code, not -march=native: on a VM whose CPU reports AMX (this one), a native
# build crashes with a general protection fault in libggml-cpu at the first token.
export CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}
"$VENV/bin/pip" install ${LLAMA_WHEELS:+--find-links "$LLAMA_WHEELS"} "$SPEC"
"$VENV/bin/python" -c "import llama_cpp.server.app; import llama_cpp; print('llama-cpp-python', llama_cpp.__version__, 'in $VENV')"
