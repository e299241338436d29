"""Fine-tuning on the arm itself: an asynchronous actor and learner around any robot.

``gipo-robot finetune --policy BC --robot ROBOT`` (:func:`finetune_on_robot`): the actor acts on the robot
behind the safety guard at its control rate, sampling from the policy's Gaussian, and stores every episode
with its behaviour log-probs, versions and interventions; the learner (a second process) trains with the
objective (GIPO by default) on whatever has landed and publishes versioned weights. The robot never waits
for the learner, so what the learner trains on is a few versions old by construction, and GIPO's trust
weight decides how much each older sample still counts. The modules, in the order data flows:

- :mod:`.config` — :class:`ArmConfig`, the run's settings (FinetuneConfig's learner fields plus the robot's);
- :mod:`.channel` — the run directory as the channel between the two processes;
- :mod:`.actor_loop` — the actor: swap weights, reset, guarded steps, label, commit;
- :mod:`.operator` — labels and resets from a person at the terminal, or a script;
- :mod:`.episodes` — stored episodes -> rollout batches (label reward) and BC data (interventions);
- :mod:`.logs` — logged episodes of earlier sessions (``--from-store``);
- :mod:`.learner_loop` — the learner process: read, replay, update, publish, checkpoint;
- :mod:`.run` — both together, the learner supervised;
- :mod:`.report` — the learning curve and the run's numbers.
"""

from __future__ import annotations

from typing import Any

from gipo_robot.train.arm.config import ArmConfig

__all__ = ["ArmConfig", "finetune_on_robot"]


def __getattr__(name: str) -> Any:
    """``finetune_on_robot`` loads torch: imported on first use, so the CLI's ``--help`` stays light."""
    if name == "finetune_on_robot":
        from gipo_robot.train.arm.run import finetune_on_robot

        return finetune_on_robot
    raise AttributeError(f"module 'gipo_robot.train.arm' has no attribute {name!r}")
