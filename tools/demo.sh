#!/usr/bin/env bash
# The whole pipeline on generated data, on CPU (about 10 minutes on 2 cores; GPUs are used when present):
#   1. generate demo data in the real VOC / COCO / Places / iNat / ImageNet layouts  (tools/make_demo_data.py)
#   2. Barlow Twins pretraining of a small ResNet-18                                  (configs/pretrain/demo.yaml)
#   3. export the torchvision backbone and convert it for detectron2                  (tools/export_backbone.py,
#                                                                                      tools/convert_to_d2.py)
#   4. the transfer suite (SVM, linear, kNN, detection/segmentation) against a random-init baseline, and the
#      report                                                                         (configs/suite/demo.yaml)
# Re-running resumes: finished stages and tasks are reused. Output: $DEMO_OUTPUT (default ./demo_output).
# Extra arguments go to the suite, e.g. ./tools/demo.sh --tasks voc07_svm knn
#
# Your own images instead: ./tools/demo.sh --images DIR [key=value ...] pretrains with the small-image recipe
# (configs/pretrain/my_images.yaml: small stem, 32 px) on DIR (a flat folder, an ImageFolder tree, or a CIFAR/STL-10
# download folder) and plots the loss, online-probe and kNN curves (probe/kNN need labels: DIR/<class>/ with a
# sibling DIR/../val/, or CIFAR/STL-10). Output: $DEMO_OUTPUT (default ./my_images_output).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
install_project test
cd "${repo_root}"

if [[ "${1:-}" == "--images" ]]; then
  images="${2:?--images needs a folder}"
  shift 2
  out="${DEMO_OUTPUT:-my_images_output}"
  knn=()
  if [[ -d "${images}/../val" ]]; then
    knn=("knn.every_epochs=5" "knn.train_root=${images}" "knn.val_root=${images}/../val")
  fi
  tools/pretrain.sh configs/pretrain/my_images.yaml "output_dir=${out}/pretrain" "data.root=${images}" "${knn[@]}" "$@"
  "${PYTHON_BIN}" - "${out}" <<'PLOT'
import sys
from pathlib import Path

from transfer.report.plots import pretraining_plots
from transfer.report.pretrain_stats import read_pretrain_stats

out = Path(sys.argv[1])
curves = read_pretrain_stats(out / "pretrain" / "stats.jsonl")
(out / "plots").mkdir(parents=True, exist_ok=True)
for plot in pretraining_plots({"your images": curves}, out / "plots"):
    print(f"plot: {plot.path}")
for name, points in (("online linear probe", curves.probe_top1), ("kNN", curves.knn_top1)):
    if points:
        print(f"{name} top-1 by {curves.knn_axis}: " + ", ".join(f"{x:g}: {y:.1f}" for x, y in points))
PLOT
  echo "backbone: ${out}/pretrain/resnet18.pth (small stem; ${out}/pretrain/resnet18.json)"
  exit 0
fi

out="${DEMO_OUTPUT:-demo_output}"
data="${out}/data"
pretrain_dir="${out}/pretrain"
started=${SECONDS}
stage() { echo; echo "=== [demo $(( SECONDS - started ))s] $*"; }

stage "1/4 generating demo data in ${data} and ${out}/pretrain_data"
"${PYTHON_BIN}" tools/make_demo_data.py "${data}" --images-per-class 24
"${PYTHON_BIN}" tools/make_demo_data.py "${out}/pretrain_data" --layouts imagefolder --images-per-class 100

stage "2/4 Barlow Twins pretraining (configs/pretrain/demo.yaml)"
tools/pretrain.sh configs/pretrain/demo.yaml "output_dir=${pretrain_dir}" "data.root=${out}/pretrain_data/imagefolder/train" \
  "knn.train_root=${data}/imagefolder/train" "knn.val_root=${data}/imagefolder/val"

stage "3/4 exporting the backbone and converting it for detectron2"
"${PYTHON_BIN}" tools/export_backbone.py "${pretrain_dir}/checkpoint.pth" "${out}/barlowtwins_resnet18.pth" --arch resnet18
cp "${pretrain_dir}/stats.jsonl" "${out}/stats.jsonl"  # the report plots the pretraining curves next to the weights
"${PYTHON_BIN}" tools/convert_to_d2.py "${out}/barlowtwins_resnet18.pth" "${out}/barlowtwins_resnet18_d2.pkl" --arch resnet18

stage "4/4 transfer suite and report (configs/suite/demo.yaml)"
set +e
"${PYTHON_BIN}" -m transfer.suite "${out}/barlowtwins_resnet18.pth" --labels "Barlow Twins (demo)" \
  --data-root "${data}" --output "${out}/suite" --config configs/suite/demo.yaml \
  --title "Barlow Twins transfer report (demo data)" "$@"
status=$?
set -e

stage "done (exit ${status})"
echo "report: ${out}/suite/report.html"
echo "        ${out}/suite/report.md"
echo "        ${out}/suite/summary.json"
exit "${status}"
