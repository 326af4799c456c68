"""Training batches of the torchvision engine: rank shards partition each pass, batches share an aspect group."""

import itertools

from transfer.detection.torchvision.sampler import GroupedInfiniteBatchSampler


def test_ranks_partition_a_pass_and_groups_stay_apart():
    wide = set(range(0, 12, 2))
    batches_per_rank = []
    for rank in range(2):
        sampler = GroupedInfiniteBatchSampler(12, batch_size=3, seed=5, rank=rank, world_size=2,
                                              group_of=lambda index: index in wide)
        batches_per_rank.append(list(itertools.islice(iter(sampler), 2)))
    for batches in batches_per_rank:
        for batch in batches:
            assert len({index in wide for index in batch}) == 1  # never mixes wide and tall images
    seen = [index for batches in batches_per_rank for batch in batches for index in batch]
    assert sorted(seen) == list(range(12))  # one pass, split without overlap between the two ranks


def test_same_seed_same_stream_and_it_never_ends():
    first = list(itertools.islice(iter(GroupedInfiniteBatchSampler(5, 2, seed=1)), 20))
    again = list(itertools.islice(iter(GroupedInfiniteBatchSampler(5, 2, seed=1)), 20))
    assert first == again and len(first) == 20
