#!/usr/bin/env bash
# The whole pipeline on generated data, on CPU (about 25 minutes on 2 cores; GPUs are used when present):
#   1. generate demo data in the real VOC / COCO / Places / iNat / ImageNet layouts  (tools/make_demo_data.py)
#   2. Barlow Twins pretraining of a small ResNet-18                                  (configs/pretrain/demo.yaml)
#   3. export the torchvision backbone and convert it for detectron2                  (tools/export_backbone.py,
#                                                                                      tools/convert_to_d2.py)
#   4. the classification transfer tasks (SVM, linear, semi-supervised, kNN) against a random-init baseline,
#      3 seeds per stochastic task, and the report                                    (configs/suite/demo.yaml)
#   5. a detection / instance segmentation smoke test on smaller data                 (configs/suite/demo_detection.yaml)
# Re-running resumes: finished stages and tasks are reused. Output: $DEMO_OUTPUT (default ./demo_output).
# DEMO_SEED=S (default 0) pretrains with seed S and runs the stochastic tasks with seeds 100*S, 100*S+1, ...;
# use a new DEMO_OUTPUT for each seed (a pretraining run refuses to resume with another seed).
# Extra arguments go to the classification suite (step 4), e.g. ./tools/demo.sh --tasks voc07_svm knn;
# DEMO_DETECTION=0 skips step 5.
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
seed="${DEMO_SEED:-0}"
if ! [[ "${seed}" =~ ^[0-9]+$ ]]; then
  echo "tools/demo.sh: DEMO_SEED must be a non-negative integer, got '${seed}'" >&2
  exit 2
fi
data="${out}/data"
detection_data="${out}/detection_data"
pretrain_dir="${out}/pretrain"
started=${SECONDS}
stage() { echo; echo "=== [demo $(( SECONDS - started ))s] $*"; }

stage "1/5 generating demo data in ${data}, ${detection_data} and ${out}/pretrain_data"
# 80 training + 40 test images per class: 200 test images per linear/kNN task, enough for the comparison with
# random init to exceed the seed-to-seed spread where it holds (docs/benchmarks.md, "Demo").
"${PYTHON_BIN}" tools/make_demo_data.py "${data}" --images-per-class 80 \
  --layouts imagefolder,voc,coco,places205,places365,inat2018,imagenet
"${PYTHON_BIN}" tools/make_demo_data.py "${detection_data}" --layouts voc,coco --images-per-class 24
"${PYTHON_BIN}" tools/make_demo_data.py "${out}/pretrain_data" --layouts imagefolder --images-per-class 100

stage "2/5 Barlow Twins pretraining, seed ${seed} (configs/pretrain/demo.yaml)"
tools/pretrain.sh configs/pretrain/demo.yaml "output_dir=${pretrain_dir}" "data.root=${out}/pretrain_data/imagefolder/train" \
  "knn.train_root=${data}/imagefolder/train" "knn.val_root=${data}/imagefolder/val" "seed=${seed}"

stage "3/5 exporting the backbone and converting it for detectron2"
"${PYTHON_BIN}" tools/export_backbone.py "${pretrain_dir}/checkpoint.pth" "${out}/barlowtwins_resnet18.pth" --arch resnet18
cp "${pretrain_dir}/stats.jsonl" "${out}/stats.jsonl"  # the report plots the pretraining curves next to the weights
"${PYTHON_BIN}" tools/convert_to_d2.py "${out}/barlowtwins_resnet18.pth" "${out}/barlowtwins_resnet18_d2.pkl" --arch resnet18

stage "4/5 classification transfer tasks and report (configs/suite/demo.yaml)"
set +e
"${PYTHON_BIN}" -m transfer.suite "${out}/barlowtwins_resnet18.pth" --labels "Barlow Twins (demo)" \
  --data-root "${data}" --output "${out}/suite" --config configs/suite/demo.yaml \
  --title "Barlow Twins transfer report (demo data)" "seed=$(( 100 * seed ))" "$@"
status=$?
detection_status=0
if [[ "${DEMO_DETECTION:-1}" != "0" ]]; then
  stage "5/5 detection and instance segmentation smoke test (configs/suite/demo_detection.yaml)"
  "${PYTHON_BIN}" -m transfer.suite "${out}/barlowtwins_resnet18.pth" --labels "Barlow Twins (demo)" \
    --data-root "${detection_data}" --output "${out}/suite_detection" --config configs/suite/demo_detection.yaml \
    --title "Barlow Twins detection smoke test (demo data)" "seed=$(( 100 * seed ))"
  detection_status=$?
fi
set -e
if [[ ${status} -eq 0 ]]; then
  status=${detection_status}
fi

stage "done (exit ${status})"
echo "report: ${out}/suite/report.html"
echo "        ${out}/suite/report.md"
echo "        ${out}/suite/summary.json"
if [[ "${DEMO_DETECTION:-1}" != "0" ]]; then
  echo "detection smoke test: ${out}/suite_detection/report.md"
fi
exit "${status}"
