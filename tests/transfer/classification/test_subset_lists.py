"""The shipped ImageNet 1%/10% lists are SimCLR's, byte for byte; lists on disk take precedence."""

import gzip
import hashlib
import re

import pytest

from transfer.classification.subset_lists import read_subset_names, shipped_list_path

# google-research/simclr imagenet_subsets/*.txt at commit 383d4143fd8cf7879ae10f1046a9baeb753ff438
PUBLISHED = {"1percent.txt": ("71e82a48ba78252683ae334c4d019ebd5c6e855b9599c1389fbe83eb9549cf17", 12811),
             "10percent.txt": ("6d09de11e7bdaf5b1f3b1f249b6183695f97310cdd20f0c03e7235b6b9392091", 128116)}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_shipped_list_is_the_published_one(name):
    text = gzip.decompress(shipped_list_path(name).read_bytes())
    sha256, lines = PUBLISHED[name]
    assert hashlib.sha256(text).hexdigest() == sha256
    names = text.decode().splitlines()
    assert len(names) == lines == len(set(names))
    assert all(re.fullmatch(r"n\d{8}_\d+\.JPEG", line) for line in names)
    assert len({line.split("_")[0] for line in names}) == 1000  # every ImageNet class


def test_a_list_on_disk_takes_precedence(tmp_path):
    (tmp_path / "1percent.txt").write_text("n01440764_1.JPEG\n\nn01443537_2.JPEG\n")
    assert read_subset_names(tmp_path / "1percent.txt") == ["n01440764_1.JPEG", "n01443537_2.JPEG"]
    shipped = read_subset_names(tmp_path / "10percent.txt")  # absent: the packaged list
    assert len(shipped) == 128116 and shipped[0].endswith(".JPEG")
    with pytest.raises(FileNotFoundError, match="subset file not found: .*2percent.txt"):
        read_subset_names(tmp_path / "2percent.txt")
