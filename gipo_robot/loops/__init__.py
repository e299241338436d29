"""The loops: where a policy, a teleop device, a robot and an episode store meet.

Legend: ``A`` action size, ``H`` chunk length.

Components (``datasets``, ``policies``, ``sim``, ``hardware``, ``teleop``'s devices) know nothing of the
loops; the loops live here, one layer above them, and share one guarded step:

- :mod:`~gipo_robot.loops.actor`: a policy as an actor, one observation in, one action out
  (:func:`~gipo_robot.loops.actor.policy_input`, the one observation-to-tensor converter;
  :class:`~gipo_robot.loops.actor.PolicyActor`, the one chunk executor);
- :mod:`~gipo_robot.loops.step`: the guarded step (observe -> action -> ``robot.act`` -> task status ->
  the store row) and the episode runner (reset, paced or unpaced steps until the task or a step limit
  ends the episode);
- :mod:`~gipo_robot.loops.deploy`: a policy on a robot behind the safety guard, every step recorded
  (``gipo-robot deploy``);
- :mod:`~gipo_robot.loops.record`: a teleop device (or a policy the operator may take over from) driving
  a robot, every step recorded (``gipo-robot record``);
- :mod:`~gipo_robot.loops.evaluate`: success rate, return and videos of a policy on a simulated task or a
  robot (``gipo-robot eval``, fine-tuning's evaluation, the quickstart).

Import the submodules directly (``from gipo_robot.loops.deploy import deploy``); this package imports
nothing on its own, so ``import gipo_robot.loops`` stays cheap.
"""
