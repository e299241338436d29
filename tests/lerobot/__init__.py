"""Tests of the LeRobot integration against the real ``lerobot`` package (0.6.x).

LeRobot 0.6 needs Python >= 3.12, numpy 2 and torch < 2.12, so these run in a LeRobot environment,
``.venv-lerobot``, with gipo-robot's core installed the way a user installs it (no ``[sim]``). Build and run
(``make test-lerobot``)::

    python3.12 -m venv .venv-lerobot
    .venv-lerobot/bin/pip install "lerobot[dataset,feetech,dynamixel]==0.6.1"
    .venv-lerobot/bin/pip install -e ".[dev]"
    HF_HUB_OFFLINE=1 .venv-lerobot/bin/python -m pytest -q tests/lerobot

Under the main ``.venv`` (no lerobot) they skip, saying so, except ``test_missing_lerobot.py``; in
``.venv-lerobot`` (or with ``GIPO_REQUIRE_LEROBOT=1``) a missing lerobot fails instead, and a lerobot
outside 0.6 fails everywhere (``conftest.require_lerobot``). Everything is local: datasets are recorded and
policies trained by LeRobot itself inside the test's temporary folder (``made_by_lerobot.py``).
"""
