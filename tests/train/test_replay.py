"""Replay buffer: eviction, version tagging, staleness histogram, minibatches, safetensors round trip."""

import pytest
import torch

from gipo_robot.train.replay import ReplayBuffer, RolloutBatch


def batch(version: int, t: int = 3, n: int = 2, h: int = 2, a: int = 3) -> RolloutBatch:
    g = torch.Generator().manual_seed(version)
    return RolloutBatch(
        obs={"x": torch.randn(t, n, 4, generator=g)},
        next_obs={"x": torch.randn(t, n, 4, generator=g)},
        actions=torch.randn(t, n, h, a, generator=g),
        logp_behavior=torch.randn(t, n, h, a, generator=g),
        exec_mask=torch.ones(t, n, h, dtype=torch.bool),
        rewards=torch.randn(t, n, generator=g),
        terminated=torch.zeros(t, n, dtype=torch.bool),
        truncated=torch.zeros(t, n, dtype=torch.bool),
        version=version,
    )


def test_keeps_the_last_k_batches_and_evicts_the_oldest():
    buf = ReplayBuffer(capacity=3)
    for v in range(3):
        assert buf.add(batch(v)) == []
    evicted = buf.add(batch(3))
    assert [b.version for b in evicted] == [0]
    assert [b.version for b in buf.batches] == [1, 2, 3]
    assert len(buf) == 3 * 6  # T·N = 6 samples per batch


def test_staleness_histogram_counts_samples_by_age():
    buf = ReplayBuffer(capacity=4)
    for v in (5, 6, 7):
        buf.add(batch(v))
    # Current version 8: the batches are 3, 2 and 1 versions old, 6 samples each.
    assert buf.staleness(8) == {1: 6, 2: 6, 3: 6}
    assert buf.staleness(7) == {0: 6, 1: 6, 2: 6}


def test_versions_must_increase():
    buf = ReplayBuffer(capacity=2)
    buf.add(batch(2))
    with pytest.raises(ValueError, match="increasing policy version"):
        buf.add(batch(2))
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0)


def test_capacity_one_is_on_policy():
    buf = ReplayBuffer(capacity=1)
    buf.add(batch(0))
    buf.add(batch(1))
    assert [b.version for b in buf.batches] == [1] and buf.staleness(1) == {0: 6}


def test_minibatches_cover_the_buffer_before_repeating():
    buf = ReplayBuffer(capacity=2)
    buf.add(batch(0))
    buf.add(batch(1))
    idx = buf.minibatches(4, 3, torch.Generator().manual_seed(0))
    seen = torch.cat(idx)
    assert len(seen) == 12 and len(set(seen.tolist())) == 12  # 12 samples, each once
    assert all(0 <= i < 12 for i in seen.tolist())


def test_flat_merges_time_and_envs():
    b = batch(0)
    assert b.flat("actions").shape == (6, 2, 3)
    assert b.flat("obs")["x"].shape == (6, 4)
    torch.testing.assert_close(b.flat("rewards")[2:4], b.rewards[1])  # row-major: t=1 -> rows 2, 3


def test_tensor_round_trip_is_exact():
    buf = ReplayBuffer(capacity=2)
    buf.add(batch(4))
    buf.add(batch(9))
    back = ReplayBuffer.from_tensors(buf.to_tensors())
    assert back.capacity == 2 and [b.version for b in back.batches] == [4, 9]
    for a, b in zip(buf.batches, back.batches, strict=True):
        assert torch.equal(a.actions, b.actions) and torch.equal(a.obs["x"], b.obs["x"])
        assert torch.equal(a.terminated, b.terminated)
