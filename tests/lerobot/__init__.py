"""Tests of the LeRobot adapters against the real ``lerobot`` package (0.4.4).

LeRobot 0.4 needs torch < 2.11, so these run in a second venv, ``.venv-lerobot``; under the main ``.venv``
(no lerobot) they skip, except ``test_missing_lerobot.py``. Build and run (``make test-lerobot``)::

    python3.11 -m venv .venv-lerobot
    .venv-lerobot/bin/pip install torch==2.9.1 torchvision==0.24.1
    .venv-lerobot/bin/pip install lerobot==0.4.4 "pandas<3" "pyarrow<22"
    .venv-lerobot/bin/pip install -e ".[dev]"
    HF_HUB_OFFLINE=1 .venv-lerobot/bin/python -m pytest -q tests/lerobot

``pandas<3`` and ``pyarrow<22``: robosuite's mink pins numpy < 2, and newer pandas/pyarrow wheels refuse it.
"""
