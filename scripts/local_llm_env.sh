#!/usr/bin/env bash
# The opt-in local provider's test server: llama-cpp-python[server] and gguf, exactly as pinned in
# uv.lock's local-llm group, in their own environment (.run/llm-venv; .venv is never touched).
# llama-cpp-python builds llama.cpp from source the first time (cmake and a C++ compiler; minutes
# on 2 cores), then uv's cache makes it instant. Used by `task test:local-llm`.
set -euo pipefail
cd "$(dirname "$0")/.."

uv_cmd=(uv)
if ! command -v uv >/dev/null 2>&1; then
  uv_cmd=(python3 -m uv)  # scripts/bootstrap.sh installs uv with pip when it is missing
fi
# Text models only: the multimodal library (mtmd) is not built, which saves a good part of the build.
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}"
UV_PROJECT_ENVIRONMENT=.run/llm-venv "${uv_cmd[@]}" sync --frozen --only-group local-llm "$@"
.run/llm-venv/bin/python -c 'import llama_cpp, gguf; print("llama-cpp-python", llama_cpp.__version__, "ready in .run/llm-venv")'
