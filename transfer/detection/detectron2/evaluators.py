"""detectron2 evaluators per dataset kind: Pascal VOC (AP, AP50, AP75; 11-point on VOC2007) and COCO (box, mask).

The VOC evaluator is detectron2's own, unchanged for its headline numbers; it also reports each class's
AP50 as ``bbox["AP50-<class>"]`` (detectron2's naming for per-class values, as ``COCOEvaluator``'s
``AP-<class>``), which the results JSON keeps as ``per_class["ap50"]``.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from typing import Callable

from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.evaluation import COCOEvaluator, DatasetEvaluator, PascalVOCDetectionEvaluator
from detectron2.evaluation.pascal_voc_evaluation import voc_eval
from detectron2.utils import comm

PER_CLASS_AP50_PREFIX = "AP50-"


class PascalVOCEvaluatorWithClassAP50(PascalVOCDetectionEvaluator):
    """``PascalVOCDetectionEvaluator`` plus per-class AP50 (same predictions, same VOC metric)."""

    def evaluate(self) -> dict | None:
        # Every rank takes part in both gathers (the parent's and this one), in the same order.
        gathered = comm.gather(self._predictions, dst=0)
        results = super().evaluate()
        if not comm.is_main_process():
            return results
        predictions = defaultdict(list)
        for predictions_of_rank in gathered:
            for class_id, lines in predictions_of_rank.items():
                predictions[class_id].extend(lines)
        with tempfile.TemporaryDirectory(prefix="voc_class_ap50_") as folder:
            detections_template = os.path.join(folder, "{}.txt")
            for class_id, class_name in enumerate(self._class_names):
                with open(detections_template.format(class_name), "w") as handle:
                    handle.write("\n".join(predictions.get(class_id, [""])))
                _, _, ap50 = voc_eval(detections_template, self._anno_file_template, self._image_set_path,
                                      class_name, ovthresh=0.5, use_07_metric=self._is_2007)
                results["bbox"][f"{PER_CLASS_AP50_PREFIX}{class_name}"] = float(ap50 * 100)
        return results


def _voc_evaluator(cfg: CfgNode, dataset_name: str, output_folder: str) -> DatasetEvaluator:
    return PascalVOCEvaluatorWithClassAP50(dataset_name)


def _coco_evaluator(cfg: CfgNode, dataset_name: str, output_folder: str) -> DatasetEvaluator:
    tasks = ("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",)
    return COCOEvaluator(dataset_name, tasks=tasks, output_dir=output_folder)


# MetadataCatalog's ``evaluator_type`` -> evaluator factory.
EVALUATORS: dict[str, Callable[[CfgNode, str, str], DatasetEvaluator]] = {
    "pascal_voc": _voc_evaluator,
    "coco": _coco_evaluator,
}


def build_evaluator(cfg: CfgNode, dataset_name: str, output_folder: str) -> DatasetEvaluator:
    """The evaluator for ``dataset_name``'s kind; a clear error for kinds this protocol does not evaluate."""
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type", None)
    if evaluator_type not in EVALUATORS:
        raise ValueError(f"dataset '{dataset_name}' has evaluator_type {evaluator_type!r}; supported: "
                         f"{', '.join(EVALUATORS)}")
    return EVALUATORS[evaluator_type](cfg, dataset_name, output_folder)
