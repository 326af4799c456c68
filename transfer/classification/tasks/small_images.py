"""CIFAR-10/100 and STL-10: kNN and linear evaluation of small-stem ResNet-18 trunks (the small-image recipes).

The CIFAR tasks follow mix-bt's evaluation code (main.py's kNN, linear.py), the nearest published Barlow Twins
ResNet-18 figures with a protocol this project can follow, and are compared with its numbers
(``transfer/published/cited_results.json``). The STL-10 tasks run the same protocols at STL-10's 96 px; the
STL-10 figure mix-bt publishes was made with a trunk neither stem here rebuilds, so it is named, not compared.
"""

from __future__ import annotations

from typing import Any

from transfer.catalog import CIFAR10, CIFAR100, STL10
from transfer.classification.task_setup import CONFIG_DIR, ENGINE
from transfer.classification.tasks.knn import run_knn
from transfer.classification.tasks.linear import run_linear
from transfer.protocol import Protocol
from transfer.published import cited_result
from transfer.registry import DatasetLayout, TaskSpec, register_task

_MIXBT_KNN = {"arch": "resnet18", "stem": "small", "feature_layer": "res5", "feature_dim": 512, "knn_k": 200,
              "knn_temperature": 0.5}
_MIXBT_LINEAR = {"arch": "resnet18", "stem": "small", "mode": "images", "feature_layer": "res5", "feature_dim": 512,
                 "epochs": 200, "total_batch": 512, "optimizer": "adam", "base_lr": 0.01,
                 "lr_schedule": "exponential to 1e-06", "augmentation": "crop_flip_color", "trunk_batchnorm": "batch"}
_MIXBT = "mix-bt (github.com/wgcban/mix-bt, commit 004b643)"
_STL10_OWN = "this project's: mix-bt's {} protocol at STL-10's 96 px (mix-bt's STL-10 trunk cannot be rebuilt here)"


def _register(name: str, description: str, layout: DatasetLayout, protocol: dict[str, Any], source: str,
              linear: bool) -> None:
    register_task(TaskSpec(
        name=name, description=description, datasets=(layout,), metrics=("top1", "top5") if linear else ("top1",),
        runners={ENGINE: run_linear if linear else run_knn}, protocol=Protocol(protocol, source),
        config=CONFIG_DIR / f"{name}.yaml", cited=cited_result(name), stochastic=linear,
        compared_with_baseline=True))


for _name, _layout, _title in (("cifar10", CIFAR10, "CIFAR-10"), ("cifar100", CIFAR100, "CIFAR-100")):
    _register(f"{_name}_knn", f"{_title} weighted kNN (k=200, T=0.5) top-1 on the test set, frozen 512-d features",
              _layout, {**_MIXBT_KNN, "image_size": 32}, f"{_MIXBT} main.py test()", linear=False)
    _register(f"{_name}_linear", f"{_title} linear classifier on the frozen trunk (Adam, 200 epochs; test top-1)",
              _layout, {**_MIXBT_LINEAR, "image_size": 32}, f"{_MIXBT} linear.py", linear=True)
_register("stl10_knn", "STL-10 weighted kNN (k=200, T=0.5) top-1 on the test set, frozen 512-d features at 96 px",
          STL10, {**_MIXBT_KNN, "image_size": 96}, _STL10_OWN.format("kNN"), linear=False)
_register("stl10_linear", "STL-10 linear classifier on the frozen trunk at 96 px (Adam, 200 epochs; test top-1)",
          STL10, {**_MIXBT_LINEAR, "image_size": 96}, _STL10_OWN.format("linear"), linear=True)
