"""The shared config mechanism: YAML + key=value overrides, strict keys and types."""

import dataclasses

import pytest
import yaml

from core.config import ConfigError, config_to_dict, load_config, save_config


@dataclasses.dataclass
class Optimizer:
    lr: float = 0.2
    milestones: list[int] = dataclasses.field(default_factory=lambda: [4, 8])


@dataclasses.dataclass
class Experiment:
    arch: str = "resnet50"
    epochs: int = 1000
    projector: str = "8192-8192-8192"
    amp: bool = True
    note: str | None = None
    optim: Optimizer = dataclasses.field(default_factory=Optimizer)


def write_yaml(path, mapping):
    path.write_text(yaml.safe_dump(mapping))
    return path


def test_defaults_then_file_then_overrides(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {"epochs": 300, "optim": {"lr": 0.25}})
    config = load_config(Experiment, path, ["epochs=10", "optim.milestones=[1, 2, 3]", "note=hello"])
    assert config.epochs == 10
    assert config.optim.lr == 0.25
    assert config.optim.milestones == [1, 2, 3]
    assert config.note == "hello"
    assert config.arch == "resnet50" and config.amp is True


def test_int_given_for_float_and_numeric_projector_string(tmp_path):
    config = load_config(Experiment, None, ["optim.lr=1", "projector=2048"])
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.projector == "2048"


@pytest.mark.parametrize("override, fragment", [
    ("epoch=3", "unknown config key 'epoch'"),
    ("optim.lrr=3", "unknown config key 'optim.lrr'"),
    ("epochs=3.5", "config key 'epochs' has value 3.5, expected int"),
    ("amp=maybe", "config key 'amp' has value 'maybe', expected bool"),
    ("epochs=true", "config key 'epochs' has value True, expected int"),
    ("optim.milestones=[1, x]", "config key 'optim.milestones'"),
    ("arch.depth=3", "'arch' is not a section"),
    ("epochs", "must have the form key=value"),
])
def test_bad_overrides_name_the_key(override, fragment):
    with pytest.raises(ConfigError, match=None) as error:
        load_config(Experiment, None, [override])
    assert fragment in str(error.value)


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    path = write_yaml(tmp_path / "bad.yaml", {"optim": {"learning_rate": 0.1}})
    with pytest.raises(ConfigError) as error:
        load_config(Experiment, path)
    assert "optim.learning_rate" in str(error.value) and "bad.yaml" in str(error.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Experiment, tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(Experiment, tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Experiment, tmp_path / "broken.yaml")


def test_saved_config_round_trips(tmp_path):
    config = load_config(Experiment, None, ["epochs=7", "optim.lr=0.5"])
    save_config(config, tmp_path / "resolved.yaml")
    assert yaml.safe_load((tmp_path / "resolved.yaml").read_text())["optim"] == {"lr": 0.5, "milestones": [4, 8]}
    assert load_config(Experiment, tmp_path / "resolved.yaml") == config
    assert config_to_dict(config)["epochs"] == 7
