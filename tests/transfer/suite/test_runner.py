"""The suite end to end on generated data (real tasks, small settings), then resume, skip and failure handling
with the task call replaced by a recorder."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from core.config import load_config
from core.backbone import build_backbone
from core.results import TaskResult
from transfer.suite import SuiteConfig, SuiteError, run_suite
from transfer.suite import runner as runner_module
from transfer.suite.__main__ import main as suite_main

REPO = Path(__file__).resolve().parents[3]
FEATURES = ["features.layer=res5", "features.image_size=64", "features.batch_size=20", "features.num_workers=0"]
SMALL = [
    "arch=resnet18", "random_init=true", "engine=torchvision",
    "tasks=[voc07_svm, knn, places205_linear, voc0712_detection]",
    f"overrides={{voc07_svm: [{', '.join(FEATURES)}, n_jobs=1, 'costs=[0.1,1.0]'],"
    f" knn: [{', '.join(FEATURES)}, dataset=imagefolder],"
    f" places205_linear: [mode=features, epochs=2, batch_size=20, {', '.join(FEATURES)}],"
    " voc0712_detection: [solver.max_iter=2, 'solver.steps=[1]', solver.checkpoint_period=2]}",
    f"torchvision_configs={{voc0712_detection: {REPO / 'configs/torchvision_detection/voc_instant_test.yaml'}}}",
]
METRICS = {"voc07_svm": {"mAP": 60.0}, "knn": {"top1": 40.0}, "places205_linear": {"top1": 30.0, "top5": 90.0},
           "voc0712_detection": {"AP": 10.0, "AP50": 20.0, "AP75": 5.0}}


def small_config(*extra: str) -> SuiteConfig:
    return load_config(SuiteConfig, None, [*SMALL, *extra])


class Recorder:
    """Stands in for ``run_task``: records the calls and returns a schema-valid result."""

    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[tuple[str, str | None, int | None]] = []
        self.fail = fail

    def __call__(self, task, run, engine):
        self.calls.append((task.name, run.weights, run.seed))
        if task.name == self.fail:
            raise RuntimeError("simulated crash")
        from core.checkpoint import file_sha256
        from core.results import write_result

        weights = run.weights
        result = TaskResult(task=task.name, dataset="voc2007", split="test", weights=weights or "random-init",
                            weights_sha256=file_sha256(weights) if weights else None, metrics=METRICS[task.name],
                            seed=run.seed, engine=engine, baseline=run.baseline)
        write_result(result, Path(run.output_dir) / "results.json")
        return result


@pytest.fixture(scope="module")
def finished(demo_root, weights, tmp_path_factory):
    output = tmp_path_factory.mktemp("suite")
    outcome = run_suite([str(weights)], demo_root, output, small_config(), progress=False)
    return output, outcome


def test_every_task_runs_for_both_columns(finished):
    output, outcome = finished
    assert outcome.failures == {} and outcome.skipped == {}
    assert sorted(outcome.ran) == sorted(f"{label}/{task}" for label in ("resnet18", "random init") for task in
                                         ("voc07_svm", "knn", "places205_linear/seed0", "voc0712_detection/seed0"))
    assert (output / "runs" / "resnet18" / "places205_linear" / "seed0" / "results.json").is_file()
    assert (output / "runs" / "random_init" / "voc07_svm" / "results.json").is_file()
    assert any((output / "feature_cache").iterdir())
    detection = next(result for result in outcome.runs["resnet18"] if result.task == "voc0712_detection")
    assert detection.engine == "torchvision" and set(detection.metrics) >= {"AP", "AP50", "AP75"}
    state = json.loads((output / "suite.json").read_text())
    assert state["engines"]["voc0712_detection"] == "torchvision" and len(state["ran"]) == 8
    assert all(result.baseline for result in outcome.runs["random init"])
    assert not any(result.baseline for result in outcome.runs["resnet18"])
    assert detection.protocol == {"arch": "resnet18", "engine": "torchvision", "processes": 1,
                                  "model": "Faster R-CNN R18-FPN", "norm": "BN", "total_batch": 2, "iterations": 2,
                                  "base_lr": 0.005}


def test_report_files_hold_the_paper_tables(finished):
    output, _ = finished
    markdown = (output / "report.md").read_text()
    for heading in ("VOC07", "Places", "random init", "resnet18", "torchvision"):
        assert heading in markdown, heading
    # A real one-process detection run (torchvision instant config, total batch 2) is off-protocol: it never
    # fills the Table 4 columns, and its row names the values that differ.
    sections = markdown.split("\n## ")
    table4 = next(section for section in sections if section.startswith("Transfer: detection and instance "
                                                                         "segmentation (fine-tuned; paper Table 4)\n"))
    assert "resnet18" not in table4 and "random init" not in table4
    off = next(section for section in sections if section.startswith("Transfer: detection and instance "
                                                                      "segmentation (fine-tuned; paper Table 4): "
                                                                      "not the paper's protocol"))
    row = next(line for line in off.splitlines() if line.startswith("| resnet18 |"))
    assert row.endswith("| torchvision R18-FPN | backbone resnet18 (protocol resnet50), model Faster R-CNN R18-FPN "
                        "(Faster R-CNN R50-C4), total batch 2 (16), iterations 2 (24000), learning rate 0.005 (0.1), "
                        "normalisation BN (SyncBN) |")
    html = (output / "report.html").read_text()
    assert "<table" in html and "data:image/png;base64," in html
    summary = json.loads((output / "summary.json").read_text())
    assert summary  # schema checked by tests/transfer/report


def test_second_run_reuses_everything(finished, weights, demo_root, monkeypatch):
    output, _ = finished
    recorder = Recorder()
    monkeypatch.setattr(runner_module, "run_task", recorder)
    outcome = run_suite([str(weights)], demo_root, output, small_config(), progress=False)
    assert recorder.calls == [] and outcome.ran == [] and len(outcome.reused) == 8
    assert {result.task for result in outcome.runs["resnet18"]} == set(METRICS)


def test_more_trials_run_only_the_new_seeds_of_stochastic_tasks(finished, weights, demo_root, monkeypatch):
    output, _ = finished
    scratch = output.parent / "trials"
    shutil.copytree(output, scratch)
    recorder = Recorder()
    monkeypatch.setattr(runner_module, "run_task", recorder)
    run_suite([str(weights)], demo_root, scratch, small_config("trials=2"), progress=False)
    assert sorted((name, seed) for name, _, seed in recorder.calls) == sorted(
        [("places205_linear", 1), ("voc0712_detection", 1)] * 2)


def test_changed_options_rerun_the_task(finished, weights, demo_root, monkeypatch, tmp_path):
    output, _ = finished
    shutil.copytree(output, tmp_path / "out")
    recorder = Recorder()
    monkeypatch.setattr(runner_module, "run_task", recorder)
    config = small_config()
    config.overrides["knn"] = [*config.overrides["knn"], "k=5"]
    run_suite([str(weights)], demo_root, tmp_path / "out", config, progress=False)
    assert sorted(recorder.calls, key=str) == sorted([("knn", str(weights), None), ("knn", None, None)], key=str)


def test_tasks_without_data_are_skipped_with_the_reason(demo_root, weights, tmp_path, monkeypatch):
    shutil.copytree(demo_root / "VOCdevkit", tmp_path / "data" / "VOCdevkit")
    recorder = Recorder()
    monkeypatch.setattr(runner_module, "run_task", recorder)
    outcome = run_suite([str(weights)], tmp_path / "data", tmp_path / "out",
                        small_config("random_init=false", "tasks=[]"), progress=False)
    assert {name for name, _, _ in recorder.calls} == {"voc07_svm", "voc0712_detection"}
    assert str(tmp_path / "data" / "places205") in outcome.skipped["places205_linear"]
    assert "coco2017" in outcome.skipped["coco_instance_segmentation"]
    assert "places205_linear" in (tmp_path / "out" / "report.md").read_text()


def test_bad_weights_and_empty_data_root_are_clear_errors(demo_root, weights, tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(SuiteError, match="garbage.pth"):
        run_suite([str(garbage)], demo_root, tmp_path / "out", small_config(), progress=False)
    resnet34 = tmp_path / "resnet34.pth"
    torch.save(build_backbone("resnet34").state_dict(), resnet34)
    with pytest.raises(SuiteError, match="resnet34.pth cannot be used as a resnet18 backbone"):
        run_suite([str(resnet34)], demo_root, tmp_path / "out", small_config(), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SuiteError, match="no selected task has its data"):
        run_suite([str(weights)], tmp_path / "empty", tmp_path / "out", small_config(), progress=False)
    with pytest.raises(SuiteError, match="data root not found"):
        run_suite([str(weights)], tmp_path / "nowhere", tmp_path / "out", small_config(), progress=False)


def test_cli_reports_a_failed_task_and_exits_non_zero(demo_root, weights, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner_module, "run_task", Recorder(fail="knn"))
    code = suite_main([str(weights), *SMALL, "--data-root", str(demo_root), "--output", str(tmp_path / "out"),
                       "--tasks", "voc07_svm", "knn"])
    assert code == 1
    assert "FAILED resnet18/knn: RuntimeError: simulated crash" in capsys.readouterr().err
    state = json.loads((tmp_path / "out" / "suite.json").read_text())
    assert set(state["failures"]) == {"resnet18/knn", "random init/knn"}
    assert "simulated crash" in (tmp_path / "out" / "runs" / "resnet18" / "knn" / "error.log").read_text()
    assert "failed: RuntimeError: simulated crash" in (tmp_path / "out" / "report.md").read_text()


def test_cli_takes_overrides_after_the_task_list():
    from transfer.suite.__main__ import parse_args

    args = parse_args(["w.pth", "--data-root", "d", "--output", "o", "--tasks", "knn", "voc07_svm", "trials=2"])
    assert args.tasks == ["knn", "voc07_svm"] and args.overrides == ["trials=2"] and args.weights == ["w.pth"]


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert suite_main(["--data-root", str(tmp_path), "--output", str(tmp_path / "out"), "trials=zero"]) == 2
    assert "trials" in capsys.readouterr().err


def test_random_init_column_takes_the_stem_of_the_weights(tmp_path):
    from transfer.suite.runner import prepare_backbones

    paths = {}
    for stem in ("imagenet", "small"):
        paths[stem] = tmp_path / f"{stem}.pth"
        torch.save(build_backbone("resnet18", stem).state_dict(), paths[stem])
    small = prepare_backbones([str(paths["small"])], "resnet18", None, random_init=True)
    assert [backbone.stem for backbone in small] == ["small", "small"]
    assert prepare_backbones([], "resnet18", None, random_init=True)[0].stem == "imagenet"
    with pytest.raises(SuiteError, match="different stems .*--stem"):
        prepare_backbones([str(paths["small"]), str(paths["imagenet"])], "resnet18", None, random_init=True)
    chosen = prepare_backbones([str(paths["small"]), str(paths["imagenet"])], "resnet18", None, random_init=True,
                               stem="imagenet")
    assert chosen[-1].stem == "imagenet" and chosen[-1].weights is None
    with pytest.raises(ValueError, match="stem must be one of"):
        small_config("stem=tiny")


def test_small_image_tasks_run_when_their_data_is_present(demo_root, tmp_path):
    """The CIFAR/STL-10 tasks are found under the data root; the random-init column gets the weights' small
    stem, so both columns follow mix-bt's kNN protocol and sit under its cited number."""
    torch.manual_seed(2)
    weights = tmp_path / "small.pth"
    torch.save(build_backbone("resnet18", "small").state_dict(), weights)
    features = "[features.batch_size=10, features.num_workers=0]"
    config = load_config(SuiteConfig, None, ["arch=resnet18", "random_init=true", "tasks=[cifar10_knn, stl10_knn]",
                                             f"overrides={{cifar10_knn: {features}, stl10_knn: {features}}}"])
    outcome = run_suite([str(weights)], demo_root, tmp_path / "out", config, labels=["small"], progress=False)
    assert not outcome.failures and sorted(outcome.ran) == sorted(
        f"{column}/{task}" for task in ("cifar10_knn", "stl10_knn") for column in ("small", "random init"))
    random_runs = {result.task: result for result in outcome.runs["random init"]}
    assert random_runs["cifar10_knn"].protocol["stem"] == "small"
    markdown = outcome.report["markdown"].read_text()
    cifar = markdown.split("cifar10_knn: ", 1)[1].split("\n## ", 1)[0]
    assert "| Mixed Barlow Twins, ResNet-18 (mix-bt) | 90.5 | cited |" in cifar
    assert "| small |" in cifar and "| random init |" in cifar and "not the cited" not in cifar
