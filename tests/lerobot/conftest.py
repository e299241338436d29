"""Shared fixtures: no hub access, caches in the test's temporary folder, lerobot 0.6 required where it must
be, a tiny random ACT written with LeRobot's own ``save_pretrained``, and an ACT trained by LeRobot on a
dataset LeRobot recorded (``made_by_lerobot``)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

SKIP_REASON = (
    "lerobot is not installed in this venv; run `make test-lerobot` (builds .venv-lerobot, "
    "see tests/lerobot/__init__.py)"
)
SUPPORTED = ("0.6",)
"""The LeRobot releases the adapters support (``[lerobot]`` extra: ``>=0.6,<0.7``)."""
STATE_LAYOUT = {"eef": [3], "gripper": [2]}
ENV_LAYOUT = {"object": [4]}
ACTION_DIM, CHUNK = 3, 6


# Any attempt to reach the Hugging Face hub fails instead of downloading. huggingface_hub reads this when
# it is first imported, so it is set here, before any test module imports lerobot.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def lerobot_required() -> bool:
    """Whether a missing lerobot is a failure rather than a skip: in the LeRobot venv (``.venv-lerobot``, what
    ``make test-lerobot`` runs) or with ``GIPO_REQUIRE_LEROBOT=1``."""
    return Path(sys.prefix).name == ".venv-lerobot" or os.environ.get("GIPO_REQUIRE_LEROBOT") == "1"


def lerobot_problem() -> str | None:
    """Why the installed lerobot cannot run these tests (missing, or not a :data:`SUPPORTED` release)."""
    try:
        import lerobot
    except ImportError as err:
        return f"lerobot cannot be imported ({err})"
    if not lerobot.__version__.startswith(tuple(f"{v}." for v in SUPPORTED)):
        return f"lerobot {lerobot.__version__} is installed; the adapters support {SUPPORTED}"
    return None


def pytest_configure(config):
    """Where lerobot is required (:func:`lerobot_required`), a missing or unsupported one ends the session
    with the reason instead of letting every module skip; elsewhere the modules skip (``importorskip``)."""
    problem = lerobot_problem() if lerobot_required() else None
    if problem is not None:
        raise pytest.UsageError(
            f"tests/lerobot: {problem}; this environment must have lerobot[dataset]>=0.6,<0.7 "
            "(make setup-lerobot builds .venv-lerobot)"
        )


@pytest.fixture(scope="session", autouse=True)
def caches_in_tmp(tmp_path_factory):
    """Keep what LeRobot leaves behind in the session's temporary folder, for this process and the processes
    the tests start: Hugging Face ``datasets`` copies every parquet file LeRobot reads into its cache
    (``~/.cache/huggingface/datasets``), and LeRobot 0.6's ``PreTrainedConfig.from_pretrained`` leaves a copy
    of the config in the temp folder (``NamedTemporaryFile(delete=False)``) at every load."""
    cache, scratch = tmp_path_factory.mktemp("hf_datasets_cache"), tmp_path_factory.mktemp("tmpdir")
    os.environ.update(
        HF_DATASETS_CACHE=str(cache),
        HF_LEROBOT_HOME=str(tmp_path_factory.mktemp("hf_lerobot_home")),
        TMPDIR=str(scratch),
    )
    tempfile.tempdir = str(scratch)
    try:
        import datasets
    except ImportError:
        return
    datasets.config.HF_DATASETS_CACHE = cache


def write_tiny_act(path, *, seed: int = 0, image: tuple[int, int, int] | None = None):
    """A small random ACT (state 5, environment state 4, action 3, chunk 6; optionally one camera) saved
    with ``ACTPolicy.save_pretrained`` and its processors with normalisation statistics. Returns the stats."""
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    from tests.lerobot.made_by_lerobot import TINY_ACT

    inputs = {
        "observation.state": PolicyFeature(FeatureType.STATE, (5,)),
        "observation.environment_state": PolicyFeature(FeatureType.ENV, (4,)),
    }
    if image is not None:
        inputs["observation.images.front"] = PolicyFeature(FeatureType.VISUAL, image)
    config = ACTConfig(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        chunk_size=CHUNK,
        n_action_steps=CHUNK,
        **TINY_ACT,
        vision_backbone="resnet18",
        device="cpu",
    )
    torch.manual_seed(seed)
    policy = ACTPolicy(config)
    g = torch.Generator().manual_seed(seed)
    stats = {
        "observation.state": {"mean": torch.randn(5, generator=g), "std": torch.rand(5, generator=g) + 0.5},
        "observation.environment_state": {"mean": torch.zeros(4), "std": torch.ones(4)},
        "action": {"mean": torch.tensor([0.1, -0.2, 0.0]), "std": torch.tensor([0.5, 2.0, 0.05])},
    }
    if image is not None:
        stats["observation.images.front"] = {
            "mean": torch.full((3, 1, 1), 0.5),
            "std": torch.full((3, 1, 1), 0.25),
        }
    pre, post = make_pre_post_processors(config, dataset_stats=stats)
    policy.save_pretrained(path)
    pre.save_pretrained(path)
    post.save_pretrained(path)
    return stats


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    """LeRobot's calibration of an so101 follower, by LeRobot's own procedure, on a first virtual arm:
    ``(folder, the calibration data)``."""
    from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus
    from tests.lerobot.virtual_so101 import lerobot_calibrate

    folder = tmp_path_factory.mktemp("calibration")
    with pytest.MonkeyPatch.context() as mp, VirtualServoBus("feetech") as bus:
        data = lerobot_calibrate(bus, folder, "robot", "so101_follower", "follower", mp)
    return folder, data


@pytest.fixture(scope="session")
def tiny_act(tmp_path_factory):
    """Folder of a state-only tiny random ACT checkpoint (LeRobot format)."""
    pytest.importorskip("lerobot", minversion="0.6", reason=SKIP_REASON)
    path = tmp_path_factory.mktemp("act") / "pretrained_model"
    write_tiny_act(path)
    return path


@pytest.fixture(scope="session")
def trained_act(tmp_path_factory):
    """``(checkpoint folder, dataset folder)``: an ACT (chunk 4) trained by LeRobot for 4 steps on an arm
    dataset LeRobot recorded (see ``made_by_lerobot``)."""
    pytest.importorskip("lerobot", minversion="0.6", reason=SKIP_REASON)
    from tests.lerobot.made_by_lerobot import record_dataset, train_act

    root = tmp_path_factory.mktemp("trained_act")
    record_dataset(root / "dataset", (20, 14, 17))
    return train_act(root / "dataset", root / "train"), root / "dataset"
