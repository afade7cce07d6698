#!/usr/bin/env bash
# One entry point for a fresh machine: installs what learnops needs, then runs it.
#   ./dev.sh demo [options]   generate a demo organisation and run the pipeline on it
#   ./dev.sh test [pytest args]   run the test suite (the default, bounded subset)
#   ./dev.sh learnops ...     any learnops command inside the project environment
# Needs only python3.11 and pip; everything else comes from PyPI, pinned by uv.lock.
set -euo pipefail
cd "$(dirname "$0")"

UV_VERSION=0.13.8
export UV_COMPILE_BYTECODE=1        # without .pyc, `import prefect` takes twice as long
export UV_PYTHON_DOWNLOADS=never    # use the machine's Python 3.11; never download one
export UV_LINK_MODE=copy
export DO_NOT_TRACK=1 DBT_SEND_ANONYMOUS_USAGE_STATS=false PREFECT_SERVER_ANALYTICS_ENABLED=false

python_bin=$(command -v python3.11 || command -v python3)
if [ ! -x .tools/bin/uv ] || [ "$(.tools/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    "$python_bin" -m venv .tools
    .tools/bin/pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
.tools/bin/uv sync --quiet --frozen --python "$python_bin"

command=${1:-demo}
shift || true
case "$command" in
    demo) exec .venv/bin/learnops demo "$@" ;;
    test) exec .venv/bin/python -m pytest -m "not slow" -n 2 --dist loadfile --no-loadscope-reorder "$@" ;;
    learnops) exec .venv/bin/learnops "$@" ;;
    *) echo "usage: ./dev.sh demo|test|learnops [args]" >&2; exit 2 ;;
esac
