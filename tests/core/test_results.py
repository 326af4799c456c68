"""The shared results-JSON schema."""

import json

import pytest

from core.results import SCHEMA_VERSION, ResultsError, TaskResult, read_result, write_result


def make_result(**changes):
    fields = dict(task="voc07_svm", dataset="voc2007", split="test", weights="/w/resnet50.pth",
                  metrics={"mAP": 86.2}, per_class={"ap": {"aeroplane": 95.0}}, seed=0, wall_time_s=1.5)
    fields.update(changes)
    return TaskResult(**fields)


def test_round_trip(tmp_path):
    result = make_result(curves={"loss": [[0, 2.0], [10, 1.0]]}, engine=None)
    write_result(result, tmp_path / "results.json")
    assert read_result(tmp_path / "results.json") == result
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION and on_disk["metrics"] == {"mAP": 86.2}


@pytest.mark.parametrize("changes, fragment", [
    ({"metrics": {}}, "at least one metric"),
    ({"metrics": {"mAP": float("nan")}}, "metric 'mAP'"),
    ({"metrics": {"mAP": "high"}}, "metric 'mAP'"),
    ({"task": ""}, "'task'"),
])
def test_invalid_results_rejected(changes, fragment):
    with pytest.raises(ResultsError, match=fragment):
        make_result(**changes)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        read_result(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ResultsError, match="broken.json"):
        read_result(tmp_path / "broken.json")
    payload = json.loads(json.dumps({**make_result().__dict__, "extra": 1}))
    (tmp_path / "extra.json").write_text(json.dumps(payload))
    with pytest.raises(ResultsError, match="unknown field.*extra"):
        read_result(tmp_path / "extra.json")
    payload = {**make_result().__dict__, "schema_version": 99}
    (tmp_path / "version.json").write_text(json.dumps(payload))
    with pytest.raises(ResultsError, match="schema_version"):
        read_result(tmp_path / "version.json")
