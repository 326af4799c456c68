"""Hand-built task results shared by the report tests (values chosen so means/stds are easy by hand)."""

import pytest

from core.results import TaskResult

OURS = "resnet50.pth (ours)"
RANDOM = "random init"
OURS_SHA = "ab" * 32
VOC_AP = {"aeroplane": 85.0, "bicycle": 75.0, "bird": 80.0}


# The paper's protocol values, written out from the paper (App. B.1, C.1, C.2) and VISSL's configs, so that
# these hand-built results count as protocol-true; each test that wants an off-protocol result changes one.
PAPER_PROTOCOL = {
    "voc07_svm": {"arch": "resnet50", "feature_layer": "res5_vissl8k", "feature_dim": 8192, "image_size": 224},
    "places205_linear": {"arch": "resnet50", "mode": "images", "feature_layer": "res5_vissl8k", "feature_dim": 8192,
                         "image_size": 224, "total_batch": 256, "base_lr": 0.01, "epochs": 14, "processes": 8},
    "voc0712_detection": {"arch": "resnet50", "model": "Faster R-CNN R50-C4", "norm": "SyncBN", "total_batch": 16,
                          "iterations": 24000, "base_lr": 0.1, "processes": 8},
    "coco_instance_segmentation": {"arch": "resnet50", "model": "Mask R-CNN R50-C4", "norm": "SyncBN",
                                   "total_batch": 16, "iterations": 90000, "base_lr": 0.03, "processes": 8},
    "imagenet_linear": {"arch": "resnet50", "mode": "images", "feature_layer": "res5", "feature_dim": 2048,
                        "image_size": 224, "epochs": 100, "total_batch": 256, "base_lr": 0.3, "lr_schedule": "cosine"},
    "knn": {"arch": "resnet50", "feature_layer": "res5", "feature_dim": 2048, "image_size": 224, "knn_k": 20,
            "knn_temperature": 0.07},
}


def result(task, dataset, split, metrics, weights="runs/resnet50.pth", **extra):
    extra.setdefault("protocol", dict(PAPER_PROTOCOL.get(task, {})))
    return TaskResult(task=task, dataset=dataset, split=split, weights=weights, metrics=metrics, **extra)


def build_sample_runs():
    """Our backbone (every kind of result, 3 Places205 trials) and a random-init baseline."""
    ours = [
        result("voc07_svm", "voc2007", "test", {"mAP": 80.0}, weights_sha256=OURS_SHA, layer="res5",
               per_class={"ap": VOC_AP}, config={"image_size": 64, "svm": {"costs": [0.1, 1.0]}}, seed=0),
        # Three Places205 trials: mean 53.0, sample std sqrt(((-3)^2 + (-1)^2 + 4^2) / 2) = sqrt(13) = 3.6056.
        *[result("places205_linear", "places205", "val", {"top1": top1, "top5": 80.0}, weights_sha256=OURS_SHA,
                 config={"epochs": 2, "image_size": 64}, seed=seed)
          for seed, top1 in ((2, 57.0), (0, 50.0), (1, 52.0))],
        result("voc0712_detection", "voc2007", "test", {"AP": 50.5, "AP50": 78.0, "AP75": 55.25},
               engine="detectron2", weights_sha256=OURS_SHA, per_class={"ap50": {"aeroplane": 70.0, "bird": 60.0}},
               curves={"loss": [[0, 3.0], [10, 2.0], [20, 1.5]]}, config={"solver": {"max_iter": 20}}, seed=0),
        result("coco_instance_segmentation", "coco2017", "val",
               {"box_AP": 30.0, "box_AP50": 50.0, "box_AP75": 31.0, "mask_AP": 27.0, "mask_AP50": 45.0,
                "mask_AP75": 28.0}, engine="torchvision", weights_sha256=OURS_SHA,
               curves={"loss": [[0, 4.0], [10, 2.5]]}, seed=0,
               protocol={**PAPER_PROTOCOL["coco_instance_segmentation"], "model": "Mask R-CNN R50-FPN",
                         "total_batch": 2, "processes": 1}),
        result("imagenet_linear", "imagenet", "val", {"top1": 60.0, "top5": 85.0}, weights_sha256=OURS_SHA, seed=0),
        result("knn", "imagenet", "val", {"top1": 45.0}, weights_sha256=OURS_SHA),
        result("voc07_lowshot_svm", "voc2007", "test", {"mAP@1": 20.0, "mAP@1_std": 1.5, "mAP@8": 40.0,
                                                        "mAP@8_std": 2.25}, weights_sha256=OURS_SHA),
        result("mystery_task", "toyset", "val", {"score": 0.5}, weights_sha256=OURS_SHA),
    ]
    random_init = [
        result("voc07_svm", "voc2007", "test", {"mAP": 30.0}, weights="random", layer="res5",
               per_class={"ap": {"aeroplane": 35.0, "bicycle": 25.0, "bird": 30.0}}, seed=0, baseline=True),
        result("places205_linear", "places205", "val", {"top1": 10.0, "top5": 30.0}, weights="random", seed=0,
               baseline=True),
        result("knn", "imagenet", "val", {"top1": 20.0}, weights="random", baseline=True),
    ]
    return {OURS: ours, RANDOM: random_init}


@pytest.fixture
def sample_runs():
    return build_sample_runs()
