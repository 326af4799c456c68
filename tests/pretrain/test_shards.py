"""Shard sets: tools/make_shards.py round trip, per-epoch plans over ranks, the torch shard loader's exact
resume, worker independence, corrupt members, and a resumed training run on shards."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest
import torch
import webdataset

from pretrain.data import DataError, detect_layout
from pretrain.decode_views import DecodingTwoViewTransform
from pretrain.shard_loader import ShardTwoViewStream, build_shard_loader
from pretrain.shards import INDEX_FILE, Shard, ShardIndex, ShardIndexError, epoch_plan, read_index
from pretrain.train import pretrain

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("make_shards", REPO / "tools" / "make_shards.py")
make_shards_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_shards_tool)


def make_shards(src: Path, out: Path, shard_size_mb: float = 0.01) -> dict:
    return make_shards_tool.make_shards(src, out, shard_size_mb=shard_size_mb, progress=False)


@pytest.fixture
def shard_set(image_folder, tmp_path) -> Path:
    """The 12 images of ``image_folder`` (about 1.7 kB each) in shards of at most 10 kB (4 shards)."""
    make_shards(image_folder, tmp_path / "shards")
    return tmp_path / "shards"


def read_members(root: Path) -> list[dict]:
    index = json.loads((root / INDEX_FILE).read_text())
    return [sample for shard in index["shards"]
            for sample in webdataset.tarfile_samples([{"url": str(root / shard["name"])}])]


def test_shards_hold_the_original_bytes_and_labels(image_folder, shard_set):
    index = json.loads((shard_set / INDEX_FILE).read_text())
    assert index["classes"] == ["circle", "square"] and index["count"] == 12
    counts = [shard["count"] for shard in index["shards"]]
    assert len(counts) > 1 and min(counts) > 0 and sum(counts) == 12
    for shard in index["shards"]:  # the limit, padded to tarfile's 10240-byte records
        assert (shard_set / shard["name"]).stat().st_size <= 20_480
    originals = {path.read_bytes(): path.parent.name for path in image_folder.glob("*/*.jpg")}
    members = read_members(shard_set)
    assert len(members) == 12 and len({member["__key__"] for member in members}) == 12
    for member in members:
        assert member["jpg"] in originals  # byte for byte
        assert index["classes"][int(member["cls"])] == originals[member["jpg"]]
    assert sorted(member["jpg"] for member in members) == sorted(originals)  # each original exactly once
    assert detect_layout(shard_set) == "shards" and read_index(shard_set).total == 12


def test_flat_folder_shards_have_no_labels_and_an_existing_set_is_not_overwritten(tmp_path, write_images):
    write_images(tmp_path / "flat", 3)
    index = make_shards(tmp_path / "flat", tmp_path / "out", shard_size_mb=1000)
    assert index["classes"] == [] and [shard["count"] for shard in index["shards"]] == [3]
    assert all("cls" not in member for member in read_members(tmp_path / "out"))
    with pytest.raises(FileExistsError, match="already holds a shard set"):
        make_shards(tmp_path / "flat", tmp_path / "out")


def test_index_errors_name_the_file(shard_set):
    (shard_set / "shard-000001.tar").unlink()
    with pytest.raises(ShardIndexError, match="missing.*shard-000001.tar"):
        read_index(shard_set)
    (shard_set / INDEX_FILE).write_text("{not json")
    with pytest.raises(ShardIndexError, match=f"{shard_set / INDEX_FILE} is not valid JSON"):
        read_index(shard_set)


@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
def test_epoch_plans_split_every_epoch_evenly_over_ranks(tmp_path, world_size):
    for name in "abcd":
        (tmp_path / name).touch()
    index = ShardIndex(tmp_path, (Shard("a", 5), Shard("b", 3), Shard("c", 4), Shard("d", 1)), ())
    orders = set()
    for epoch in range(4):
        plans = [epoch_plan(index, 7, epoch, world_size, rank) for rank in range(world_size)]
        assert len({sum(piece.take for piece in plan) for plan in plans}) == 1  # equal counts
        read = Counter((piece.shard.name, member) for plan in plans for piece in plan
                       for member in range(piece.skip, piece.skip + piece.take))
        assert set(read) == {(shard.name, member) for shard in index.shards for member in range(shard.count)}
        assert sum(read.values()) - 13 == (-13) % world_size  # padding only, as DistributedSampler
        orders.add(tuple(piece.shard.name for piece in plans[0]))
    assert len(orders) > 1  # shards are reshuffled per epoch


def stream_of(shard_set: Path, rank: int = 0, world_size: int = 1, batch: int = 3,
              buffer: int = 4) -> ShardTwoViewStream:
    return ShardTwoViewStream(read_index(shard_set), DecodingTwoViewTransform(16), seed=3, per_device_batch=batch,
                              world_size=world_size, rank=rank, shuffle_buffer=buffer)


def epoch_batches(stream: ShardTwoViewStream, epoch: int, start_batch: int = 0, workers: int = 0) -> list:
    stream.set_epoch(epoch, start_batch)
    return list(build_shard_loader(stream, workers, pin_memory=False))


def assert_same_batches(first: list, second: list) -> None:
    assert len(first) == len(second)
    for one, other in zip(first, second):
        assert all(torch.equal(a, b) for a, b in zip(one, other))


def test_resuming_mid_epoch_gives_the_remaining_batches_with_any_number_of_workers(shard_set):
    stream = stream_of(shard_set)
    full = epoch_batches(stream, epoch=1)
    assert stream.batches_per_epoch == 4 and [len(batch[0]) for batch in full] == [3, 3, 3, 3]
    assert_same_batches(epoch_batches(stream, epoch=1, start_batch=2), full[2:])
    assert_same_batches(epoch_batches(stream, epoch=1, workers=2), full)
    assert_same_batches(epoch_batches(stream, epoch=1, start_batch=1, workers=2), full[1:])
    other_epoch = epoch_batches(stream, epoch=2)
    assert not torch.equal(other_epoch[0][0], full[0][0])
    assert all(batch[2].sum() == 0 for batch in full)


def test_ranks_read_disjoint_samples(shard_set):
    keys = [sorted(key for key, _blob in stream_of(shard_set, rank, 2).raw_samples()) for rank in (0, 1)]
    assert len(keys[0]) == len(keys[1]) == 6 and sorted(keys[0] + keys[1]) == list(range(12))


def test_a_corrupt_member_is_skipped_and_counted(image_folder, tmp_path):
    (image_folder / "circle" / "img_002.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    make_shards(image_folder, tmp_path / "corrupt")
    batches = epoch_batches(stream_of(tmp_path / "corrupt", batch=4), epoch=0)
    assert [len(batch[0]) for batch in batches] == [4, 4, 4]
    assert sum(int(batch[2].sum()) for batch in batches) == 1
    assert all(torch.isfinite(batch[0]).all() for batch in batches)


def test_a_shard_set_trains_and_resumes_to_identical_weights(shard_set, tmp_path, tiny_config):
    reference_dir, output = tmp_path / "reference", tmp_path / "interrupted"
    assert pretrain(tiny_config(shard_set, reference_dir)) == "completed"
    assert pretrain(tiny_config(shard_set, output, stop_after_steps=4)) == "preempted"
    config = tiny_config(shard_set, output)
    config.data = dataclasses.replace(config.data, workers=2)
    assert pretrain(config) == "completed"
    reference = torch.load(reference_dir / "checkpoint.pth", weights_only=True)
    resumed = torch.load(output / "checkpoint.pth", weights_only=True)
    assert resumed["step"] == reference["step"] == 6
    for key, tensor in reference["model"].items():
        assert torch.equal(resumed["model"][key], tensor), key


def test_a_broken_shard_index_is_a_data_error(shard_set, tmp_path, tiny_config):
    (shard_set / INDEX_FILE).write_text('{"format": "something else"}')
    with pytest.raises(DataError, match="is not a shard index"):
        pretrain(tiny_config(shard_set, tmp_path / "out"))
