# Sourced by tools/*.sh: selects the Python environment and installs the project into it.
# An already-active virtualenv or conda environment (e.g. a cluster's, with its own CUDA torch) is used
# as is; otherwise ./.venv is created. Installs are skipped when nothing they depend on changed.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ -n "${VIRTUAL_ENV:-}" ]]; then
  python_bin="${VIRTUAL_ENV}/bin/python"
elif [[ -n "${CONDA_PREFIX:-}" ]]; then
  python_bin="${CONDA_PREFIX}/bin/python"
else
  if [[ ! -x "${repo_root}/.venv/bin/python" ]]; then
    base_python="${PYTHON:-python3}"
    echo "[env] creating ${repo_root}/.venv with $(${base_python} --version)"
    "${base_python}" -m venv "${repo_root}/.venv"
  fi
  python_bin="${repo_root}/.venv/bin/python"
fi
export PYTHON_BIN="${python_bin}"

# install_project EXTRAS: pip-installs the project (editable) with the tested pins, once per change of
# setup.cfg / constraints.txt / pyproject.toml / environment.
install_project() {
  local extras="$1"
  local env_prefix stamp digest
  env_prefix="$("${python_bin}" -c 'import sys; print(sys.prefix)')"
  digest="$(cat "${repo_root}/setup.cfg" "${repo_root}/constraints.txt" "${repo_root}/pyproject.toml" \
            | "${python_bin}" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')"
  stamp="${env_prefix}/.barlowtwins-pipeline-${extras//[^a-z0-9]/_}-${digest}-$(echo "${repo_root}" | cksum | cut -d' ' -f1)"
  if [[ -f "${stamp}" ]]; then
    return 0
  fi
  echo "[env] installing barlowtwins-pipeline[${extras}] into ${env_prefix} (torch/torchvision pins from constraints.txt)"
  local constraint_args=(-c "${repo_root}/constraints.txt")
  if [[ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]] && "${python_bin}" -c 'import torch, torchvision' 2>/dev/null; then
    # Keep the environment's own (e.g. cluster CUDA) torch build rather than replacing it with our pin.
    constraint_args=()
  fi
  "${python_bin}" -m pip install --quiet --upgrade pip
  "${python_bin}" -m pip install --quiet "${constraint_args[@]}" -e "${repo_root}[${extras}]"
  touch "${stamp}"
}
