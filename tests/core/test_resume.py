"""The one resume guard: every differing setting is named with both values; free keys and their sections may change."""

import pytest

from core.resume import ResumeError, changed_settings, check_resume

SAVED = {"seed": 0, "optim": {"lr": 0.2, "momentum": 0.9}, "output_dir": "a", "knn": {"every_epochs": 5}}


def test_same_settings_resume():
    check_resume(SAVED, dict(SAVED))


def test_every_difference_is_named_in_key_order():
    new = {**SAVED, "seed": 1, "optim": {"lr": 0.3, "momentum": 0.9}, "epochs": 10}
    assert changed_settings(SAVED, new) == ["epochs: None -> 10", "optim.lr: 0.2 -> 0.3", "seed: 0 -> 1"]
    with pytest.raises(ResumeError, match=r"run/checkpoint\.pth was made with other settings \(epochs: None -> 10, "
                                          r"optim\.lr: 0\.2 -> 0\.3, seed: 0 -> 1\)"):
        check_resume(SAVED, new, source="run/checkpoint.pth")


def test_free_keys_and_whole_free_sections_may_change():
    new = {**SAVED, "output_dir": "b", "knn": {"every_epochs": 0, "k": 3}}
    check_resume(SAVED, new, frozenset({"output_dir", "knn"}))
    with pytest.raises(ResumeError, match="knn.every_epochs"):
        check_resume(SAVED, new, frozenset({"output_dir"}))
