# Sourced by the launchers: the interpreter is $PYTHON when set, else the project's .venv (made by
# `make demo` / `make test`), else `python` from PATH.
if [ -z "${PYTHON:-}" ]; then
    _ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ -x "$_ROOT/.venv/bin/python" ]; then PYTHON="$_ROOT/.venv/bin/python"; else PYTHON=python; fi
fi
