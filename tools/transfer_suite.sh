#!/usr/bin/env bash
# Every transfer task that has data under --data-root, for one or more backbones, then the report.
#
#   tools/transfer_suite.sh WEIGHTS [WEIGHTS ...] --data-root DIR --output OUT [--tasks ...] [--trials N]
#                           [--random-init] [--engine auto|detectron2|torchvision] [--config FILE] [key=value ...]
#
# Same arguments as `python -m transfer.suite` (see README.md). Exit status: 0 every task ran or was skipped
# for a stated reason, 1 a task failed (the others still ran), 2 bad input.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
install_project test
exec "${PYTHON_BIN}" -m transfer.suite "$@"
