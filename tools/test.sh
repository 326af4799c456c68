#!/usr/bin/env bash
# Runs the test suite on CPU. Creates/updates .venv (or uses the active environment) first.
# Extra arguments go to pytest, e.g. ./tools/test.sh tests/pretrain -k loss
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
install_project test
cd "${repo_root}"
workers="${PYTEST_WORKERS:-$(nproc 2>/dev/null || echo 2)}"
exec "${PYTHON_BIN}" -m pytest -n "${workers}" --dist loadfile "$@"
