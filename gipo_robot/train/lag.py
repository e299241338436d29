"""Controlled policy lag: batches collected by the policy of L versions ago (``FinetuneConfig.policy_lag``).

The staleness that asynchronous collection produces by accident, produced on purpose and held constant, so a
benchmark can ask how each objective copes with data L versions old while the amount of data stays the same
(the buffer is ``replay_size`` batches at every L). :class:`PolicyHistory` keeps the last L + 1 versions'
weights; the collector acts with the oldest, whose log-probs become the batch's behaviour log-probs.
"""

from __future__ import annotations

import copy
from collections import deque

from torch import Tensor

from gipo_robot.policies.gaussian import GaussianPolicy

__all__ = ["PolicyHistory"]


class PolicyHistory:
    """The weights of the last ``lag + 1`` versions of a policy, and a copy of it to act with the oldest.

    Args:
        policy: the policy being trained (its structure is copied once; weights are copied per version).
        lag: L, how many versions behind the current one the behaviour policy is.
    """

    def __init__(self, policy: GaussianPolicy, lag: int):
        if lag < 1:
            raise ValueError(f"PolicyHistory needs lag >= 1, got {lag}")
        self.lag = lag
        self.versions: deque[tuple[int, dict[str, Tensor]]] = deque(maxlen=lag + 1)
        self._behaviour = copy.deepcopy(policy).train(False)

    def push(self, policy: GaussianPolicy, version: int) -> None:
        """Record ``policy``'s weights as ``version`` (newer than every version held)."""
        if self.versions and version <= self.versions[-1][0]:
            raise ValueError(f"policy version {version} is not newer than {self.versions[-1][0]}")
        weights = {k: v.detach().clone() for k, v in policy.state_dict().items()}
        self.versions.append((version, weights))

    def behaviour(self) -> tuple[GaussianPolicy, int]:
        """The oldest version held (``lag`` behind the newest once that many exist) and its number."""
        if not self.versions:
            raise ValueError("PolicyHistory holds no version yet: push the current policy first")
        version, weights = self.versions[0]
        self._behaviour.load_state_dict(weights)
        return self._behaviour, version

    def to_tensors(self) -> dict[str, Tensor]:
        """Flat name -> tensor map for a checkpoint: ``v<version>.<parameter>``."""
        return {f"v{version}.{k}": v for version, weights in self.versions for k, v in weights.items()}

    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Take up the versions :meth:`to_tensors` wrote (replacing those held)."""
        versions: dict[int, dict[str, Tensor]] = {}
        for key, value in tensors.items():
            head, name = key.split(".", 1)
            versions.setdefault(int(head[1:]), {})[name] = value
        self.versions.clear()
        for version in sorted(versions)[-(self.lag + 1) :]:
            self.versions.append((version, versions[version]))
