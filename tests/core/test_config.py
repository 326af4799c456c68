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


# Every decimal form float() reads is a float, in an override and in a file (YAML 1.1 reads most as strings).
@pytest.mark.parametrize("text, expected", [
    ("1e-6", 1e-6), ("1E6", 1e6), ("1e30", 1e30), ("1e+30", 1e30), ("1.0e+30", 1e30), ("-1e+30", -1e30),
    (".5", 0.5), ("5.", 5.0), ("-.5e3", -500.0), ("+2.5", 2.5), ("1_000.5", 1000.5), ("3", 3.0),
])
def test_float_forms(tmp_path, text, expected):
    assert float(text) == expected  # the reference: Python's own reading of the text
    assert load_config(Optimizer, overrides=[f"lr={text}"]).lr == expected
    path = tmp_path / "config.yaml"
    path.write_text(f"lr: {text}\n")
    assert load_config(Optimizer, path).lr == expected


@pytest.mark.parametrize("text", [".nan", ".inf", "-.inf", "inf", "nan"])
def test_float_keys_refuse_nan_and_infinity(text):
    with pytest.raises(ConfigError, match=rf"config key 'lr' has value .*, expected a finite float \(override 'lr={text}'\)"):
        load_config(Optimizer, overrides=[f"lr={text}"])


@pytest.mark.parametrize("override, fragment", [
    ("epochs=1.5", "config key 'epochs' has value 1.5, expected int"),
    ("epochs=1e3", "config key 'epochs' has value 1000.0, expected int"),
    ("optim.lr=abc", "config key 'optim.lr' has value 'abc', expected float"),
])
def test_wrong_numbers_name_the_override_not_the_file(tmp_path, override, fragment):
    path = write_yaml(tmp_path / "config.yaml", {"epochs": 10})
    with pytest.raises(ConfigError) as error:
        load_config(Experiment, path, [override])
    assert fragment in str(error.value) and f"(override '{override}')" in str(error.value)
    assert str(path) not in str(error.value)


def test_wrong_number_in_the_file_names_the_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("epochs: 1.5\n")
    with pytest.raises(ConfigError, match=rf"'epochs' has value 1.5, expected int \({path}\)"):
        load_config(Experiment, path, ["optim.lr=0.1"])


def test_string_keys_keep_numbers_as_written(tmp_path):
    config = load_config(Experiment, overrides=["arch=1e-6", "projector=2048", "note=1E6"])
    assert (config.arch, config.projector, config.note) == ("1e-6", "2048", "1E6")


def test_number_forms_survive_a_save_and_reload(tmp_path):
    config = load_config(Experiment, overrides=["optim.lr=1e-6", "note=.5"])
    save_config(config, tmp_path / "saved.yaml")
    assert load_config(Experiment, tmp_path / "saved.yaml") == config


def test_yaml_safe_load_is_left_alone():
    load_config(Optimizer, overrides=["lr=1e-6"])
    assert yaml.safe_load("1e-6") == "1e-6"  # the global YAML 1.1 rule is not monkeypatched


def test_typed_settings_sit_between_the_file_and_the_overrides(tmp_path):
    """Values the calling code sets (a path, a seed) need no text round trip, and are checked like the rest."""
    import dataclasses

    @dataclasses.dataclass
    class Section:
        root: str = ""

    @dataclasses.dataclass
    class Settings:
        seed: int = 0
        data: Section = dataclasses.field(default_factory=Section)

    path = tmp_path / "c.yaml"
    path.write_text("seed: 1\n")
    config = load_config(Settings, path, ["seed=3"], {"seed": 2, "data.root": "a: b, 'c'"})
    assert (config.seed, config.data.root) == (3, "a: b, 'c'")  # the override wins; the path keeps its text
    assert load_config(Settings, path, settings={"seed": 2}).seed == 2
    with pytest.raises(ConfigError, match="setting 'seed'"):
        load_config(Settings, path, settings={"seed": "two"})
