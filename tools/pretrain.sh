#!/usr/bin/env bash
# Barlow Twins pretraining launcher: one process per GPU through torchrun, or one CPU process without GPUs.
#
#   tools/pretrain.sh [LAUNCHER OPTIONS] CONFIG [key=value ...]
#
# LAUNCHER OPTIONS (before CONFIG) go to torchrun, e.g. for node 0 of 2:
#   tools/pretrain.sh --nnodes 2 --node-rank 0 --master-addr node001 --master-port 29500 CONFIG ...
# (--nproc-per-node N overrides the GPU count, e.g. to run N CPU processes on gloo.)
# key=value overrides any config key (dotted for sections): epochs=100 data.root=/data/imagenet/train
# Exit codes: 0 done; 2 bad input; 3 NaN/inf loss; 75 pre-empted after a checkpoint (plain python only; under
# torchrun the launcher reports its own non-zero code). See docs/pretraining.md.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
install_project test

launcher_args=()
nproc_given=""
while [[ $# -gt 0 && "$1" == --* ]]; do
  case "$1" in
    --standalone|--no-python|--no_python) launcher_args+=("$1"); shift ;;
    --nproc-per-node=*|--nproc_per_node=*) nproc_given="${1#*=}"; shift ;;
    --nproc-per-node|--nproc_per_node) nproc_given="$2"; shift 2 ;;
    --*=*) launcher_args+=("$1"); shift ;;
    *)
      if [[ $# -lt 2 ]]; then echo "tools/pretrain.sh: option $1 needs a value" >&2; exit 2; fi
      launcher_args+=("$1" "$2"); shift 2 ;;
  esac
done
if [[ $# -lt 1 ]]; then
  echo "usage: tools/pretrain.sh [--nnodes N --node-rank R --master-addr HOST --master-port PORT] CONFIG [key=value ...]" >&2
  exit 2
fi

gpus="$("${PYTHON_BIN}" -c 'import torch; print(torch.cuda.device_count())')"
nproc="${nproc_given:-${gpus}}"
if [[ "${nproc}" -eq 0 && ${#launcher_args[@]} -eq 0 ]]; then
  echo "[pretrain] no GPU found: one CPU process"
  exec "${PYTHON_BIN}" -m pretrain "$@"
fi
if [[ "${nproc}" -eq 0 ]]; then
  nproc=1
fi
if [[ ${#launcher_args[@]} -eq 0 ]]; then
  launcher_args=(--standalone)
fi
# torchrun forwards these signals to the workers (SIGUSR1: SLURM's pre-emption warning) and gives them
# TORCHELASTIC_SHUTDOWN_TIMEOUT seconds to write their checkpoint before SIGKILL.
export PET_SIGNALS_TO_HANDLE="${PET_SIGNALS_TO_HANDLE:-SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1}"
export TORCH_ELASTIC_SHUTDOWN_TIMEOUT="${TORCH_ELASTIC_SHUTDOWN_TIMEOUT:-90}"
echo "[pretrain] torchrun --nproc-per-node ${nproc} ${launcher_args[*]}"
exec "${PYTHON_BIN}" -m torch.distributed.run --nproc-per-node "${nproc}" "${launcher_args[@]}" -m pretrain "$@"
