"""SuiteConfig through the shared config mechanism: bad keys and values are named."""

from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from transfer.suite.config import SuiteConfig
from transfer.registry import all_tasks

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["demo.yaml", "demo_detection.yaml"])
def test_demo_configs_load_and_name_only_known_tasks(name):
    config = load_config(SuiteConfig, REPO / "configs" / "suite" / name)
    assert config.arch == "resnet18" and config.random_init
    assert set(config.tasks) <= set(all_tasks())
    for path in [*config.torchvision_configs.values(), *config.detectron2_configs.values()]:
        assert (REPO / path).is_file(), path


def test_demo_classification_config_repeats_stochastic_tasks_and_leaves_detection_to_the_smoke_test():
    classification = load_config(SuiteConfig, REPO / "configs" / "suite" / "demo.yaml")
    detection = load_config(SuiteConfig, REPO / "configs" / "suite" / "demo_detection.yaml")
    tasks = all_tasks()
    assert classification.trials >= 3  # mean ± std over seeds (docs/benchmarks.md, "Demo")
    assert all(tasks[name].compared_with_baseline or not tasks[name].stochastic for name in classification.tasks)
    assert not set(classification.tasks) & set(detection.tasks)
    # Every default task, except the small-image ones: they evaluate small-stem trunks, the demo's is ImageNet-stem.
    imagenet_stem = {name for name, task in tasks.items() if task.default
                     and task.protocol.values.get("stem", "imagenet") == "imagenet"}
    assert imagenet_stem == {*classification.tasks, *detection.tasks}


@pytest.mark.parametrize("override, message", [
    ("tasks=[voc07]", "unknown task.*voc07"),
    ("overrides={voc_svm: [epochs=1]}", "overrides names unknown task.*voc_svm"),
    ("overrides={voc07_svm: epochs=1}", "overrides.voc07_svm must be a list of strings"),
    ("torchvision_configs={voc0712_detection: [a]}", "must be a config file path"),
    ("trials=0", "trials must be at least 1"),
    ("engine=mmdet", "engine"),
    ("trails=3", "unknown config key 'trails'"),
])
def test_bad_values_are_rejected_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(SuiteConfig, None, [override])
