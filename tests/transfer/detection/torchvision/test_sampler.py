"""Training batches of the torchvision engine: rank shards partition each pass, batches share an aspect group."""

import itertools

from transfer.detection.torchvision.sampler import GroupedInfiniteBatchSampler


def test_ranks_partition_a_pass_and_groups_stay_apart():
    wide = set(range(0, 12, 2))
    batches_per_rank = []
    for rank in range(2):
        sampler = GroupedInfiniteBatchSampler(12, batch_size=3, seed=5, rank=rank, world_size=2,
                                              group_of=lambda index: index in wide)
        batches_per_rank.append([[index for _, index in batch] for batch in itertools.islice(iter(sampler), 2)])
    for batches in batches_per_rank:
        for batch in batches:
            assert len({index in wide for index in batch}) == 1  # never mixes wide and tall images
    seen = [index for batches in batches_per_rank for batch in batches for index in batch]
    assert sorted(seen) == list(range(12))  # one pass, split without overlap between the two ranks


def test_same_seed_same_stream_and_it_never_ends():
    first = list(itertools.islice(iter(GroupedInfiniteBatchSampler(5, 2, seed=1)), 20))
    again = list(itertools.islice(iter(GroupedInfiniteBatchSampler(5, 2, seed=1)), 20))
    assert first == again and len(first) == 20


def test_batches_carry_their_iteration_and_a_resumed_stream_continues_where_it_stopped():
    def stream(start_batch):
        sampler = GroupedInfiniteBatchSampler(7, 2, seed=3, group_of=lambda index: index % 3 == 0,
                                              start_batch=start_batch)
        return list(itertools.islice(iter(sampler), 12 - start_batch))

    full = stream(0)
    assert [{iteration for iteration, _ in batch} for batch in full] == [{iteration} for iteration in range(12)]
    assert stream(5) == full[5:]  # a run resumed at iteration 5 trains on the batches an uninterrupted run would
