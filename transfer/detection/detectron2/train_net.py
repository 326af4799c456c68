r"""detectron2 fine-tuning and evaluation for the detection transfer protocol (VOC07+12, COCO).

    python -m transfer.detection.detectron2.train_net --config-file configs/detectron2/voc0712_faster_rcnn_R_50_C4_24k.yaml \
        --num-gpus 8 [--seed 0] MODEL.WEIGHTS converted.pkl OUTPUT_DIR out/voc/seed0

detectron2's own ``default_argument_parser``/``launch``/``DefaultTrainer``, so ``--num-machines``,
``--machine-rank``, ``--dist-url``, ``--resume`` and ``--eval-only`` behave as in detectron2. Added:
``--seed``, ``--random-init``, ``--register-voc``, ``--register-coco``, ``--demo-data`` and ``--results``.
Bad configs, missing weights and missing datasets stop the run before any worker starts. After evaluation
the main process writes ``OUTPUT_DIR/results.json`` (``core.results.TaskResult``) for the first test
dataset. ``run_detection`` is the evaluation suite's Python entry: one task, one process, no launch.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

try:
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import CfgNode, get_cfg
    from detectron2.data import MetadataCatalog
    from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup, launch
    from detectron2.evaluation import DatasetEvaluator
    from detectron2.utils import comm
except ImportError as error:  # detectron2 is an optional, source-built dependency
    raise ImportError(f"transfer.detection.detectron2.train_net needs detectron2 ({error}); install it from source as "
                      "described in docs/detectron2.md") from error
import yaml

from transfer.detection.detectron2 import roi_heads  # noqa: F401  (registers Res5ROIHeadsExtraNorm)
from transfer.detection.detectron2.convert import convert_checkpoint
from transfer.detection.detectron2.datasets import (
    COCO_OPTION,
    VOC_OPTION,
    DatasetSetupError,
    check_datasets,
    check_num_classes,
    class_count,
    demo_datasets,
    parse_coco_option,
    parse_voc_option,
    register_datasets,
)
from transfer.detection.detectron2.evaluators import build_evaluator
from transfer.detection.detectron2.results import build_task_result
from transfer.detection.detectron2.tasks import arch_options, get_task, model_config, resolve_config_path, task_options
from core.results import TaskResult, write_result

REMOTE_WEIGHTS_MARKER = "://"  # detectron2://, https://, manifold:// are fetched by detectron2 itself
RANDOM_INIT = "random-init"  # the results' ``weights`` of a run from random weights (as the torchvision engine)


class SetupError(ValueError):
    """The run cannot start: bad config or option, missing weights, or missing dataset."""


class Trainer(DefaultTrainer):
    """``DefaultTrainer`` with the protocol's evaluators (VOC and COCO)."""

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: str | None = None) -> DatasetEvaluator:
        return build_evaluator(cfg, dataset_name, output_folder or os.path.join(cfg.OUTPUT_DIR, "inference"))


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_option(text: str) -> Any:
        try:
            return parse(text)
        except DatasetSetupError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse_option


def argument_parser() -> argparse.ArgumentParser:
    """detectron2's ``default_argument_parser`` plus this project's dataset, seed and results options."""
    parser = default_argument_parser(epilog=__doc__.split("\n\n")[1])
    parser.add_argument("--seed", type=int, default=None,
                        help="sets SEED (each worker seeds with SEED + rank); use 0..4 for the usual 5 trials")
    parser.add_argument("--random-init", action="store_true",
                        help="train from random weights (the baseline): MODEL.WEIGHTS must stay empty")
    parser.add_argument("--register-voc", action="append", default=[], type=_argparse_type(parse_voc_option),
                        metavar=VOC_OPTION, help="register a Pascal VOC-layout split as NAME (repeatable); "
                        "YEAR 2007 (default unless DIR is named VOC2012) gives the VOC07 11-point AP")
    parser.add_argument("--register-coco", action="append", default=[], type=_argparse_type(parse_coco_option),
                        metavar=COCO_OPTION, help="register a COCO instances json and its images as NAME (repeatable)")
    parser.add_argument("--demo-data", type=Path, default=None, metavar="DIR",
                        help="register tools/make_demo_data.py DIR as demo_voc_2007_{trainval,test}, "
                        "demo_voc_2012_trainval, demo_coco_2017_{train,val} (the quick_schedules configs)")
    parser.add_argument("--results", type=Path, default=None, metavar="JSON",
                        help="results file to write (default OUTPUT_DIR/results.json)")
    return parser


def load_config(config_file: str, opts: Sequence[str], seed: int | None) -> CfgNode:
    """detectron2's config from ``config_file`` (with its ``_BASE_`` chain) and ``KEY VALUE`` overrides."""
    if not config_file:
        raise SetupError("--config-file is required (see configs/detectron2/)")
    try:
        config_file = str(resolve_config_path(config_file))
    except FileNotFoundError as error:
        raise SetupError(str(error)) from None
    cfg = get_cfg()
    for source, merge, argument in ((config_file, cfg.merge_from_file, config_file),
                                    ("command-line overrides", cfg.merge_from_list, list(opts))):
        try:
            merge(argument)
        except (KeyError, ValueError, AssertionError, TypeError, yaml.YAMLError) as error:
            # yacs: KeyError "Non-existent config key: X" (file), AssertionError "Non-existent key: X" (overrides).
            message = str(error.args[0]) if error.args else repr(error)
            hint = " (a typo? valid keys: detectron2/config/defaults.py)" if "Non-existent" in message else ""
            raise SetupError(f"{source}: {message}{hint}") from None
    if seed is not None:
        cfg.SEED = seed
    cfg.freeze()
    return cfg


def check_weights(weights: str) -> None:
    """Refuses empty or missing weights, and ``.pkl`` files detectron2 would load without name matching."""
    if not weights:
        raise SetupError("MODEL.WEIGHTS is empty: detectron2 would train from random weights; pass "
                         "MODEL.WEIGHTS path/to/converted.pkl (made by tools/convert_to_d2.py)")
    if REMOTE_WEIGHTS_MARKER in weights:
        return
    path = Path(weights)
    if not path.is_file():
        raise SetupError(f"MODEL.WEIGHTS file not found: {weights}")
    if path.suffix == ".pkl":
        with open(path, "rb") as handle:
            data = pickle.load(handle, encoding="latin1")  # detectron2 itself unpickles this file next
        if not (isinstance(data, dict) and "model" in data and data.get("matching_heuristics")):
            raise SetupError(f"{weights} lacks 'matching_heuristics': detectron2 would match no torchvision-style "
                             "names and silently train from random weights; convert it with tools/convert_to_d2.py")


def register_from_args(args: argparse.Namespace) -> None:
    """Registers the datasets named on the command line (idempotent: parent, then worker)."""
    datasets = [*args.register_voc, *args.register_coco]
    if args.demo_data is not None:
        datasets.extend(demo_datasets(args.demo_data))
    register_datasets(datasets)


def prepare(args: argparse.Namespace) -> CfgNode:
    """Everything that can fail before training: datasets, config, weights. Raises ``SetupError``."""
    try:
        register_from_args(args)
        cfg = load_config(args.config_file, args.opts, args.seed)
        if not args.random_init:
            check_weights(cfg.MODEL.WEIGHTS)
        elif cfg.MODEL.WEIGHTS:
            raise SetupError(f"--random-init trains from random weights, but MODEL.WEIGHTS is {cfg.MODEL.WEIGHTS}")
        used = list(cfg.DATASETS.TEST) if args.eval_only else [*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST]
        check_datasets(used)
        check_num_classes(used, cfg.MODEL.ROI_HEADS.NUM_CLASSES)
    except DatasetSetupError as error:
        raise SetupError(str(error)) from None
    return cfg


def config_as_dict(cfg: CfgNode) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (tuples become lists)."""
    return yaml.safe_load(cfg.dump())


def task_result(cfg: CfgNode, results: dict | None, started: float, weights: str | None = None,
                arch: str = "resnet50", baseline: bool = False) -> TaskResult | None:
    """The results of ``DATASETS.TEST[0]`` (main process only; ``None`` elsewhere or without results).

    ``weights`` is recorded instead of ``MODEL.WEIGHTS`` (e.g. the file that was converted into it).
    """
    if not comm.is_main_process() or not results or not cfg.DATASETS.TEST:
        return None
    dataset_name = cfg.DATASETS.TEST[0]
    metadata = MetadataCatalog.get(dataset_name)
    # DefaultTrainer.test returns one dataset's results unwrapped, several keyed by dataset name.
    dataset_results = results[dataset_name] if len(cfg.DATASETS.TEST) > 1 else results
    return build_task_result(
        evaluator_type=metadata.get("evaluator_type"), mask_on=cfg.MODEL.MASK_ON,
        dataset_name=metadata.get("results_name", dataset_name), split=metadata.get("split", None),
        weights=weights or cfg.MODEL.WEIGHTS or RANDOM_INIT, results=dataset_results, config=config_as_dict(cfg),
        seed=cfg.SEED if cfg.SEED >= 0 else None, wall_time_s=time.time() - started, output_dir=cfg.OUTPUT_DIR,
        processes=comm.get_world_size(), arch=arch, baseline=baseline or not (weights or cfg.MODEL.WEIGHTS))


def execute(cfg: CfgNode, args: argparse.Namespace) -> tuple[CfgNode, dict | None]:
    """Trains (unless ``--eval-only``) and evaluates; returns the config as run and the evaluation results."""
    default_setup(cfg, args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return cfg, Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
    # As run: scaled to the actual number of GPUs (SOLVER.REFERENCE_WORLD_SIZE).
    return trainer.cfg, getattr(trainer, "_last_eval_results", None)


def main(args: argparse.Namespace) -> dict | None:
    """One worker: trains (unless ``--eval-only``), evaluates, and writes the results JSON."""
    started = time.time()
    cfg, results = execute(prepare(args), args)
    result = task_result(cfg, results, started)
    if result is not None:
        path = args.results or Path(cfg.OUTPUT_DIR) / "results.json"
        write_result(result, path)
        print(f"wrote {path}: {result.task} {result.metrics}")
    return results


def run_detection(task: str, weights: str | None, data_root: str, output_dir: str, random_init: bool = False,
                  overrides: Sequence[str] = (), seed: int = 0, config_file: str | None = None,
                  arch: str = "resnet50", baseline: bool = False) -> TaskResult:
    """Fine-tunes ``weights`` (a torchvision ``arch`` in any format ``convert_checkpoint`` reads) on ``task``
    in this process and returns its result, also written to ``output_dir/results.json``.

    ``data_root``: the ``VOCdevkit`` (VOC2007 + VOC2012) for ``voc0712_detection``, the ``coco`` folder
    (``train2017``, ``val2017``, ``annotations``) for the COCO tasks. ``config_file`` replaces the task's
    protocol config (e.g. an instant test); ResNet-18/34 run on the FPN counterpart of a C4 config
    (``d2_tasks.FPN_COUNTERPARTS``) or raise ``UnsupportedBackboneError``. ``overrides``: detectron2
    ``KEY VALUE`` options, applied last. Single process: detectron2 scales batch, LR and schedule from
    ``SOLVER.REFERENCE_WORLD_SIZE`` to one worker. On CPU-only machines ``MODEL.DEVICE`` is ``cpu``.
    """
    started = time.time()
    spec = get_task(task)
    if len(overrides) % 2:
        raise SetupError(f"overrides must be KEY VALUE pairs, got {len(overrides)} items: {list(overrides)}")
    if weights is None and not random_init:
        raise SetupError("no weights given: pass a backbone file, or random_init=True for the random-init baseline")
    config_path = model_config(spec, config_file, arch)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    train, test = spec.datasets(Path(data_root))
    try:
        register_datasets([*train, test])
    except DatasetSetupError as error:
        raise SetupError(f"{task} needs data_root to be {spec.data_root}; under {data_root}: {error}") from None
    converted = ""
    if not random_init:
        converted = str(output / f"{arch}_detectron2.pkl")
        print(convert_checkpoint(weights, converted, arch=arch).describe())
    args = argument_parser().parse_args(["--config-file", str(config_path), "--seed", str(seed),
                                         *(["--random-init"] if random_init else [])])
    args.opts = [*arch_options(arch),
                 *task_options(spec, [dataset.name for dataset in train], test.name,
                               class_count(MetadataCatalog.get(test.name))),
                 *([] if torch.cuda.is_available() else ["MODEL.DEVICE", "cpu"]),
                 "MODEL.WEIGHTS", converted, "OUTPUT_DIR", str(output), *map(str, overrides)]
    cfg = prepare(args)
    if cfg.MODEL.MASK_ON != spec.mask_on or len(cfg.DATASETS.TEST) != 1:
        raise SetupError(f"{task} needs MODEL.MASK_ON {spec.mask_on} and one test dataset; the overrides changed them")
    cfg, results = execute(cfg, args)
    result = task_result(cfg, results, started, weights=RANDOM_INIT if random_init else str(weights), arch=arch,
                         baseline=baseline or random_init)
    if result is None or result.task != task:
        raise RuntimeError(f"detectron2 produced no {task} results (got {result and result.task})")
    write_result(result, output / "results.json")
    print(f"wrote {output / 'results.json'}: {result.task} {result.metrics}")
    return result


def run(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: checks the setup in this process, then launches detectron2 workers."""
    args = argument_parser().parse_args(argv)
    try:
        prepare(args)
    except SetupError as error:
        print(f"train_net: error: {error}", file=sys.stderr)
        return 2
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))
    return 0


if __name__ == "__main__":
    sys.exit(run())
