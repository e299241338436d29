"""The critic of a fine-tuning run, built for what it reads (``FinetuneConfig.critic_obs``).

- ``policy``: ``Critic(policy.config)``, the policy's encoder design with its own weights, initialised from
  the policy's encoder (its BC features and normalisation): the critic reads exactly what the policy reads.
- ``state``: an asymmetric actor-critic (Pinto et al. 2017, "Asymmetric Actor Critic for Image-Based Robot
  Learning"): the critic reads every low-dim feature the simulator provides (the observation set ``state`` of
  :mod:`gipo_robot.policies.obs_sets`, the privileged object pose included) through an MLP of the policy's
  trunk sizes, freshly initialised, while the policy goes on reading only its own features (cameras and
  proprioception). The critic is never deployed, so the privileged state is needed only in simulation; an
  env that does not provide it is refused, naming the missing feature. Its normalisation has no BC
  statistics to start from, so :meth:`~gipo_robot.policies.critic.Critic.fit_obs_stats` fits it on the run's
  first batch, before the critic's first update; the checkpoint carries it from there.

Collection keeps the critic's features in the batch beside the policy's (:func:`critic_features`; a few
floats per step, no frame twice), and the checkpoint records the critic's own config, so a resume and
:func:`~gipo_robot.policies.checkpoint.load_critic` rebuild the same critic.
"""

from __future__ import annotations

import torch

from gipo_robot.policies.critic import Critic, low_dim_critic_config
from gipo_robot.policies.gaussian import GaussianPolicy
from gipo_robot.policies.obs_sets import PRIVILEGED, select_features
from gipo_robot.train.config import FinetuneConfig
from gipo_robot.train.learner import FinetuneError

__all__ = ["build_critic", "critic_features"]


def build_critic(
    config: FinetuneConfig, policy: GaussianPolicy, low_dim: dict[str, list[int]], *, where: str
) -> Critic:
    """A new critic for ``policy`` as ``config.critic_obs`` says, its weights seeded by ``config.seed``.

    Args:
        config: the run's settings (``critic_obs``, ``seed``).
        policy: the policy being fine-tuned.
        low_dim: every low-dim feature the env observes, name -> shape.
        where: what provides ``low_dim`` (e.g. ``"the Lift env"``), for error messages.

    Raises:
        FinetuneError: ``critic_obs="state"`` where the env provides none of the privileged features (naming
            them and what it has).
    """
    torch.manual_seed(config.seed)  # the critic's head (and a state critic's trunk): a run is reproducible
    if config.critic_obs == "policy":  # separate weights, the policy's encoder (normalisation, BC features)
        critic = Critic(policy.config)
        critic.encoder.load_state_dict(policy.encoder.state_dict())
        return critic
    missing = sorted(PRIVILEGED - set(low_dim))
    if missing:
        raise FinetuneError(
            f"critic_obs='state' needs the simulator's privileged state, but {where} does not provide "
            f"{', '.join(missing)} (it has {sorted(low_dim)}); use critic_obs='policy'"
        )
    names = select_features("state", low_dim, where=where)
    return Critic(low_dim_critic_config(policy.config, {k: low_dim[k] for k in names}))


def critic_features(critic: Critic) -> tuple[str, ...]:
    """The low-dim features the critic reads, which collection keeps in the batch beside the policy's."""
    return tuple(sorted(critic.config.low_dim))
