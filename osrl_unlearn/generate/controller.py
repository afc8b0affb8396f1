"""Scripted behaviour policies for CarCircle: drive clockwise round a circle of a chosen radius.

Cheap behaviour policies (no training): a dataset from them takes about a minute to record instead
of the minutes PPO-Lag needs. CarCircle rewards clockwise running near the circle of radius 7 and
costs every step beyond |x| = 6, so the radius sets the trade-off: radius 5.8 is safe (~200 reward,
cost 0 at full speed), radius 7 earns ~440 and costs ~70 per episode. A set of radii and speeds
spans both sides of the cost limit, as DSRL's behaviour policies do.

Pure pursuit on the observation alone: RaceCar's observation starts with 0.1 * (x, y), the planar
velocity, then sin and cos of the yaw. The car's forward command is negative (its body is built
facing backwards: it moves along yaw + pi) and a positive steering command turns it clockwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from osrl_unlearn.errors import ConfigError

CONTROLLER_TASKS = ("OfflineCarCircle-v0",)
"""Tasks whose observation layout and dynamics the controller is written for."""


@dataclass(frozen=True)
class CircleController:
    """Follows the circle of ``radius`` clockwise at ``speed`` (share of the top speed)."""

    radius: float
    speed: float
    lead: float = 0.6
    """How far ahead on the circle the aim point lies, in radians."""
    gain: float = 2.0
    """Steering command per radian of heading error."""

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        position = 10.0 * obs[:2]
        moving_towards = np.arctan2(obs[4], obs[5]) + np.pi
        aim_angle = np.arctan2(position[1], position[0]) - self.lead  # clockwise ahead
        aim = self.radius * np.array([np.cos(aim_angle), np.sin(aim_angle)])
        to_aim = aim - position
        error = np.arctan2(to_aim[1], to_aim[0]) - moving_towards
        error = (error + np.pi) % (2 * np.pi) - np.pi
        steer = np.clip(-self.gain * error, -1.0, 1.0)
        return np.array([-self.speed, steer], dtype=np.float32)


def check_controller_task(task_name: str) -> None:
    if task_name not in CONTROLLER_TASKS:
        raise ConfigError(
            f"the scripted circle controller is written for {', '.join(CONTROLLER_TASKS)}, not "
            f"{task_name}; use --behaviour_source ppo for this task."
        )
