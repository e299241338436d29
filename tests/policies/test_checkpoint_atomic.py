"""Overwriting a policy checkpoint is all or nothing (issue 28 item 2, the part outside fine-tuning): a save
killed half-way leaves the old checkpoint loadable, never new weights under an old config ("modified or
truncated"), and a kill between the folder swap's two renames is named."""

from __future__ import annotations

import os

import pytest
import torch

from gipo_robot.policies import (
    CheckpointError,
    Critic,
    GaussianPolicy,
    PolicyConfig,
    load_policy,
    save_policy,
)
from gipo_robot.policies import checkpoint as checkpoint_module


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


def policy(seed: int) -> GaussianPolicy:
    torch.manual_seed(seed)
    return GaussianPolicy(PolicyConfig(low_dim={"x": [3]}, action_dim=2, hidden=[8]))


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs (BaseException, so no handler swallows it)."""


def test_a_save_killed_while_writing_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    old, new = policy(0), policy(1)
    save_policy(tmp_path / "ckpt", old, critic=Critic(old.config))
    (tmp_path / "ckpt" / "metrics.csv").write_text("step\n1\n")  # a BC run's other files go with it
    real_save_file = checkpoint_module.save_file
    calls = []

    def die_on_the_critic(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:  # the new weights are written; killed while writing the critic
            raise Killed
        return real_save_file(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint_module, "save_file", die_on_the_critic)
    with pytest.raises(Killed):
        save_policy(tmp_path / "ckpt", new, critic=Critic(new.config))
    monkeypatch.undo()
    loaded = load_policy(tmp_path / "ckpt")  # before: new weights, old config -> "modified or truncated"
    assert same(loaded, old)
    assert (tmp_path / "ckpt" / "metrics.csv").exists()
    save_policy(tmp_path / "ckpt", new)  # the next save cleans up and replaces it whole
    loaded = load_policy(tmp_path / "ckpt")
    assert same(loaded, new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_a_kill_between_the_two_renames_names_the_previous_checkpoint(tmp_path, monkeypatch):
    save_policy(tmp_path / "ckpt", policy(0))
    real_rename, renames = os.rename, []

    def die_after_the_first(src, dst):
        renames.append(dst)
        real_rename(src, dst)
        if len(renames) == 1:
            raise Killed

    monkeypatch.setattr(checkpoint_module.os, "rename", die_after_the_first)
    with pytest.raises(Killed):
        save_policy(tmp_path / "ckpt", policy(1))
    monkeypatch.undo()
    with pytest.raises(
        CheckpointError, match=r"a save was interrupted: the previous checkpoint is at .*\.ckpt\.old-"
    ):
        load_policy(tmp_path / "ckpt")


def test_the_folder_s_other_files_survive_a_save(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    (tmp_path / "run" / "tb").mkdir()
    (tmp_path / "run" / "tb" / "events").write_text("e")
    save_policy(tmp_path / "run", policy(0))
    save_policy(tmp_path / "run", policy(1))
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "run" / "tb" / "events").read_text() == "e"
    assert same(load_policy(tmp_path / "run"), policy(1))
