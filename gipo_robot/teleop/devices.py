"""The teleoperation device interface, the operator's control events, and the scripted device.

Legend: ``A`` action size, ``J`` number of joints.

A device turns an operator (a terminal keyboard, a SpaceMouse, a leader arm, or a script) into
:class:`DeviceCommand`\\ s, one per control period: an action in the follower robot's *normalised* action
space (a (A,) float64 vector in [-1, 1], meaning what ``spec.action_mode`` says) and the control events
the operator raised since the last poll (:data:`EVENTS`). The recorder (:mod:`gipo_robot.loops.record`)
polls the device once per period and acts on both.

Lifecycle: ``start()`` -> (``begin_episode(obs)``, ``poll()``\\ *, ``end_episode()``)* -> ``close()``; a
device is also a context manager (leaving the block closes it, restoring a terminal or releasing a
HID handle even on an exception).

The devices, by :data:`DEVICES` name: ``keyboard`` (:mod:`~gipo_robot.teleop.keyboard`), ``spacemouse``
(:mod:`~gipo_robot.teleop.spacemouse`), ``leader`` (:mod:`~gipo_robot.teleop.leader`), ``lerobot`` (LeRobot's
own teleoperators, :mod:`~gipo_robot.teleop.from_lerobot`) and ``scripted`` (:class:`ScriptedDevice`, here).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Control event -> what the recorder does with it.
EVENTS: dict[str, str] = {
    "start": "start recording an episode (when idle)",
    "save_success": "end the episode and save it, marked successful",
    "save_failure": "end the episode and save it, marked failed",
    "discard": "drop the episode being recorded; the next start records it again",
    "reset": "reset the scene (sim) or move home (real arm); drops an episode being recorded",
    "quit": "end the session (an episode being recorded is dropped)",
    "estop": "emergency stop: hold the arm, drop the episode, end the session",
    "takeover": "while a policy drives: toggle operator takeover (those steps are marked intervention)",
}


class TeleopError(RuntimeError):
    """A teleoperation device or recording session cannot do what was asked; the message says why."""


@dataclass(frozen=True)
class DeviceCommand:
    """What a device says in one control period.

    Attributes:
        action: (A,) float64 normalised action in [-1, 1], or None when the device has no action (a
            finished replay, an idle script).
        events: control events raised since the last poll, each a key of :data:`EVENTS`, in order.
    """

    action: np.ndarray | None = None
    events: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [e for e in self.events if e not in EVENTS]
        if unknown:
            raise ValueError(f"DeviceCommand.events: unknown {unknown}; known: {', '.join(EVENTS)}")
        object.__setattr__(self, "events", tuple(self.events))
        if self.action is not None:
            action = np.asarray(self.action, dtype=np.float64)
            if action.ndim != 1 or not np.all(np.isfinite(action)):
                raise ValueError(f"DeviceCommand.action must be a finite (A,) vector, got {action!r}")
            object.__setattr__(self, "action", action)


class TeleopDevice(abc.ABC):
    """An operator input: see the module docstring for the lifecycle."""

    name: str = "device"

    @property
    def labels_episodes(self) -> bool:
        """Whether a person at this device labels the episodes: they can raise ``save_success``,
        ``save_failure`` and ``discard`` (a keyboard, or a SpaceMouse/leader arm with one). The recorder then
        waits for their label when the time limit or the task stops an episode, instead of saving it with
        the task's success; the scripted device and a device without event keys (False) keep that."""
        return False

    def start(self) -> None:  # noqa: B027  (optional hook)
        """Open the input (terminal, HID handle, leader arm). Called once before the first poll."""

    def begin_episode(self, observation: Mapping[str, np.ndarray]) -> None:  # noqa: B027
        """A new episode starts from ``observation`` (devices that integrate a target re-seed it here)."""

    @abc.abstractmethod
    def poll(self) -> DeviceCommand:
        """The action and events of this control period; never blocks."""

    def end_episode(self) -> None:  # noqa: B027
        """The episode ended (saved, discarded, or ended by the task)."""

    def close(self) -> None:  # noqa: B027
        """Release the input. Idempotent; never raises."""

    def help(self) -> str:
        """Human-readable controls (the key map), printed when a session starts."""
        return ""

    def __enter__(self) -> TeleopDevice:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def merge_events(*commands: DeviceCommand | None) -> tuple[str, ...]:
    """The events of several commands, in order (e.g. motion from a SpaceMouse, events from a keyboard)."""
    return tuple(e for c in commands if c is not None for e in c.events)


# ------------------------------------------------------------------------------------- scripted device


EventScript = Mapping[int, Mapping[int, Sequence[str]]]
"""attempt -> step -> events: the events a :class:`ScriptedDevice` raises at a step of an attempt
(attempts count every started episode from 0, discarded ones included)."""


def parse_event_script(data: Any, source: str = "events") -> dict[int, dict[int, tuple[str, ...]]]:
    """An :data:`EventScript` from JSON-like data ``{"1": {"10": ["discard"]}}`` (keys may be strings).

    Raises:
        ValueError: not a mapping of mappings of event lists, a negative key, or an unknown event
            (the message names ``source`` and the offending entry).
    """
    if not isinstance(data, Mapping):
        raise ValueError(
            f"{source}: expected an object attempt -> step -> [events], not {type(data).__name__}"
        )
    script: dict[int, dict[int, tuple[str, ...]]] = {}
    for attempt, steps in data.items():
        if not isinstance(steps, Mapping):
            raise ValueError(f"{source}[{attempt!r}]: expected an object step -> [events]")
        for step, events in steps.items():
            where = f"{source}[{attempt!r}][{step!r}]"
            try:
                a, s = int(attempt), int(step)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: attempt and step must be integers") from None
            if a < 0 or s < 0:
                raise ValueError(f"{where}: attempt and step must be >= 0")
            if isinstance(events, str) or not isinstance(events, Sequence):
                raise ValueError(f"{where}: expected a list of events, got {events!r}")
            unknown = [e for e in events if e not in EVENTS]
            if unknown:
                raise ValueError(f"{where}: unknown events {unknown}; known: {', '.join(EVENTS)}")
            script.setdefault(a, {})[s] = tuple(events)
    return script


class ScriptedDevice(TeleopDevice):
    """An operator that never tires: replays the scripted sim expert or a stored episode's actions.

    When idle it raises ``start`` at once, so a session with this device runs headless with no prompts.
    Each episode it acts with ``next_action`` until that returns None (the script is finished), then
    raises ``save_success`` (or ``save_failure`` when ``finished_success`` says so); an episode the task
    ends first (a simulated success) is ended by the recorder. ``events`` adds scripted operator events
    (a discard, a takeover) at given steps of given attempts, for tests and demos.

    Build one with :meth:`expert` or :meth:`replay`.

    Args:
        make_episode: called at each episode start with ``(attempt, observation)``; returns the episode's
            ``next_action() -> (A,) | None`` and ``finished_success() -> bool``.
        events: an :data:`EventScript`.
        name: label recorded with each episode (``scripted-expert``, ``replay``).
    """

    def __init__(
        self,
        make_episode: Callable[
            [int, Mapping[str, np.ndarray]], tuple[Callable[[], np.ndarray | None], Callable[[], bool]]
        ],
        *,
        events: EventScript | None = None,
        name: str = "scripted",
    ) -> None:
        self._make_episode = make_episode
        self._script = parse_event_script(events or {})
        self.name = name
        self.attempt = -1
        self._step = 0
        self._recording = False
        self._next_action: Callable[[], np.ndarray | None] | None = None
        self._finished_success: Callable[[], bool] = lambda: True

    @classmethod
    def expert(
        cls, robot: Any, *, noise: float = 0.0, seed: int = 0, events: EventScript | None = None
    ) -> ScriptedDevice:
        """Drive a simulated robot with :class:`gipo_robot.sim.experts.ScriptedExpert`.

        Args:
            robot: a :class:`~gipo_robot.sim.robot.SimRobot` (the expert reads its privileged
                sim state through ``robot.env``), or a guard wrapping one (``robot.robot``).
            noise: the expert's suboptimality in [0, 1].
            seed: the expert's noise in attempt ``i`` comes from ``seed + i``.
            events: scripted operator events (see the class docstring).

        Raises:
            TeleopError: ``robot`` is not simulated, or its task has no scripted expert.
        """
        from gipo_robot.sim.experts import ScriptedExpert

        sim = _find_sim_robot(robot)
        task = sim.env.config.task
        try:
            ScriptedExpert(task, noise)  # fail here, before the session starts, for an unknown task
        except ValueError as err:
            raise TeleopError(f"scripted device: {err}") from None

        def make_episode(attempt: int, observation: Mapping[str, np.ndarray]) -> tuple:
            expert = ScriptedExpert(task, noise, np.random.default_rng([seed + attempt, 7]))
            return (lambda: expert.act(sim.env.privileged_state())), (lambda: True)

        return cls(make_episode, events=events, name="scripted-expert")

    @classmethod
    def replay(
        cls, store: Any, *, episodes: Sequence[int] | None = None, events: EventScript | None = None
    ) -> ScriptedDevice:
        """Replay the actions of stored episodes, attempt ``i`` replaying the ``i``-th (cyclically).

        Each replay ends with ``save_success`` if the stored episode was a success, else ``save_failure``.

        Args:
            store: an :class:`~gipo_robot.datasets.store.EpisodeStore` or a path to one.
            episodes: which stored episodes to replay, in order; None replays all.
            events: scripted operator events (see the class docstring).

        Raises:
            TeleopError: the store is empty, an episode index is out of range, or the store has no
                ``action`` feature.
        """
        from gipo_robot.datasets.importers import open_dataset
        from gipo_robot.datasets.store import EpisodeStore

        if not isinstance(store, EpisodeStore):
            store = open_dataset(store)
        if "action" not in store.schema:
            raise TeleopError(f"{store.path}: no 'action' feature to replay; it has {store.schema.names}")
        chosen = list(range(store.n_episodes)) if episodes is None else [int(e) for e in episodes]
        if not chosen:
            raise TeleopError(f"{store.path}: no episodes to replay")
        bad = [e for e in chosen if not -store.n_episodes <= e < store.n_episodes]
        if bad:
            raise TeleopError(f"{store.path}: episodes {bad} out of range (it has {store.n_episodes})")

        def make_episode(attempt: int, observation: Mapping[str, np.ndarray]) -> tuple:
            index = chosen[attempt % len(chosen)]
            actions = iter(store.episode(index, keys=["action"])["action"].astype(np.float64))
            success = store.episode_meta(index).success
            return (lambda: next(actions, None)), (lambda: success)

        return cls(make_episode, events=events, name="replay")

    def begin_episode(self, observation: Mapping[str, np.ndarray]) -> None:
        self.attempt += 1
        self._step = 0
        self._recording = True
        self._next_action, self._finished_success = self._make_episode(self.attempt, observation)

    def end_episode(self) -> None:
        self._recording = False
        self._next_action = None

    def poll(self) -> DeviceCommand:
        if not self._recording or self._next_action is None:
            return DeviceCommand(events=("start",))
        events = self._script.get(self.attempt, {}).get(self._step, ())
        self._step += 1
        action = self._next_action()
        if action is None:
            save = "save_success" if self._finished_success() else "save_failure"
            return DeviceCommand(events=(*events, save))
        return DeviceCommand(np.asarray(action, dtype=np.float64), events)

    def help(self) -> str:
        return f"{self.name}: records without an operator (episodes start by themselves)"


def _find_sim_robot(robot: Any) -> Any:
    """The :class:`SimRobot` inside ``robot`` (itself, or the robot a guard wraps)."""
    seen = robot
    for _ in range(4):
        if hasattr(seen, "env") and hasattr(seen.env, "privileged_state"):
            return seen
        seen = getattr(seen, "robot", None)
        if seen is None:
            break
    raise TeleopError(
        f"the scripted expert needs a simulated robot (--robot sim:TASK), got {type(robot).__name__}; "
        "use --replay STORE to replay recorded actions on a real arm"
    )


# ------------------------------------------------------------------------------------------- registry


def _keyboard(robot: Any, options: Mapping[str, Any]) -> TeleopDevice:
    from gipo_robot.teleop.keyboard import KeyboardDevice

    return KeyboardDevice(robot.spec, **options)


def _spacemouse(robot: Any, options: Mapping[str, Any]) -> TeleopDevice:
    from gipo_robot.teleop.spacemouse import SpaceMouseDevice

    return SpaceMouseDevice(robot.spec, **options)


def _leader(robot: Any, options: Mapping[str, Any]) -> TeleopDevice:
    from gipo_robot.teleop.leader import LeaderArmDevice

    return LeaderArmDevice.from_options(robot.spec, **options)


def _lerobot(robot: Any, options: Mapping[str, Any]) -> TeleopDevice:
    from gipo_robot.teleop.from_lerobot import lerobot_device

    return lerobot_device(robot.spec, **options)


def _scripted(robot: Any, options: Mapping[str, Any]) -> TeleopDevice:
    options = dict(options)
    replay = options.pop("replay", None)
    if replay is not None:
        options.pop("noise", None)
        options.pop("seed", None)
        return ScriptedDevice.replay(replay, **options)
    return ScriptedDevice.expert(robot, **options)


#: Device name -> factory ``(robot, options) -> TeleopDevice``.
DEVICES: dict[str, Callable[[Any, Mapping[str, Any]], TeleopDevice]] = {
    "keyboard": _keyboard,
    "spacemouse": _spacemouse,
    "leader": _leader,
    "lerobot": _lerobot,
    "scripted": _scripted,
}


def make_device(name: str, robot: Any, **options: Any) -> TeleopDevice:
    """Build the device ``name`` for ``robot`` (the follower) with device-specific ``options``.

    Raises:
        ValueError: unknown device name (the message lists the known ones).
        TeleopError: the device does not fit the robot or its options are wrong.
    """
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; known: {', '.join(DEVICES)}")
    return DEVICES[name](robot, options)


def device_options(
    name: str,
    *,
    seed: int | None = None,
    noise: float = 0.0,
    replay: Any = None,
    script: str | None = None,
    leader: str | None = None,
    leader_map: Any = None,
    teleop: str | None = None,
    max_seconds: float | None = None,
    interactive: bool = False,
) -> dict[str, Any]:
    """The :func:`make_device` options of device ``name`` from the ``record`` command's settings.

    Args:
        name: a key of :data:`DEVICES`.
        seed, noise, replay, script: the scripted operator's seed, expert noise, store to replay and
            operator events (JSON ``{"attempt": {"step": ["discard"]}}``).
        leader, leader_map: the leader arm's robot config and joint mapping (``leader``; the mapping
            also for a LeRobot leader arm under ``lerobot``).
        teleop: a LeRobot teleoperator config (``lerobot``: so101_leader, keyboard_ee, gamepad, ...).
        max_seconds: the per-episode time limit; a SpaceMouse or leader arm without a terminal for the
            event keys needs one, since nothing else can end an episode.
        interactive: a terminal is attached: SpaceMouse and leader sessions then take their event keys
            from the keyboard (``options["events"]`` is None until the follower's spec is known; see
            :func:`make_device`'s caller).

    Raises:
        ValueError: an unknown device, bad ``script`` JSON, a leader without its config, or no way to
            end an episode.
    """
    import json

    if name not in DEVICES:
        raise ValueError(f"unknown --device {name!r}; known: {', '.join(DEVICES)}")
    options: dict[str, Any] = {}
    if name == "scripted":
        options = {"noise": noise, "seed": seed or 0, "replay": replay}
        if script is not None:
            try:
                options["events"] = json.loads(script)
            except ValueError as err:
                raise ValueError(f"--script is not valid JSON: {err}") from None
    elif name == "leader":
        if leader is None:
            raise ValueError("--device leader needs --leader CONFIG (the leader arm's robot config)")
        options = {"leader": leader, "mapping": leader_map}
    elif name == "lerobot":
        if teleop is None:
            raise ValueError("--device lerobot needs --teleop CONFIG (a LeRobot teleoperator config)")
        options = {"teleop": teleop, "mapping": leader_map}
    if name in ("spacemouse", "leader", "lerobot"):
        if not interactive and max_seconds is None:
            raise ValueError(
                f"--device {name} without a terminal for the event keys needs --max-seconds "
                "(episodes then end at the time limit)"
            )
        if interactive:
            options["events"] = None  # the keyboard's event keys, once the follower's spec is known
    return options
