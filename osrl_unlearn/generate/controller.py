"""Scripted behaviour policies: run round a circle, or part of one; drive to a goal.

Cheap behaviour policies (no training): a dataset from them takes a minute or less to record
instead of the minutes PPO-Lag needs. A set of controllers spans both sides of the cost limit, as
DSRL's behaviour policies do.

- CarCircle (Bullet-Safety-Gym) rewards clockwise running near the circle of radius 7 and costs
  every step beyond |x| = 6, so the followed radius sets the trade-off: radius 5.8 is safe (~200
  reward, cost 0 at full speed), radius 7 earns ~440 and costs ~70 per episode.
- PointCircle1 (Safety-Gymnasium) rewards counter-clockwise running near the circle of radius 1.5
  and costs every step beyond |x| = 1.125, so the controller follows the circle with its aim point
  held within an x limit, at a speed: limit 0.8 is safe at every speed (~48 reward at speed 1.5),
  no limit earns ~56 and costs ~230 per episode.
- PointGoal1 (Safety-Gymnasium) rewards progress towards a goal that moves on when reached and
  costs every step inside one of eight hazards, so the controller drives at the goal, steering
  round the hazards with a clearance or straight through them: clearance 0.15 at 1.5 m/s is safe
  (~17 reward, cost 0), straight through earns ~22 and costs ~40 per episode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from osrl_unlearn.errors import ConfigError

Policy = Callable[[np.ndarray], np.ndarray]


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


@dataclass(frozen=True)
class CircleController:
    """CarCircle: follows the circle of ``radius`` clockwise at ``speed`` (share of the top speed).

    Pure pursuit on the observation alone: RaceCar's observation starts with 0.1 * (x, y), the
    planar velocity, then sin and cos of the yaw. The car's forward command is negative (its body is
    built facing backwards: it moves along yaw + pi) and a positive steering command turns it
    clockwise."""

    radius: float
    speed: float
    lead: float = 0.6
    """How far ahead on the circle the aim point lies, in radians."""
    gain: float = 2.0
    """Steering command per radian of heading error."""

    def policy_for(self, env) -> Policy:
        """The observation is enough: the controller itself."""
        return self

    def source(self) -> dict:
        """How the dataset summary names this behaviour."""
        return {"label": f"controller, radius {self.radius:g}", "radius": self.radius,
                "speed": self.speed}  # fmt: skip

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        position = 10.0 * obs[:2]
        moving_towards = np.arctan2(obs[4], obs[5]) + np.pi
        aim_angle = np.arctan2(position[1], position[0]) - self.lead  # clockwise ahead
        aim = self.radius * np.array([np.cos(aim_angle), np.sin(aim_angle)])
        to_aim = aim - position
        error = _wrap(np.arctan2(to_aim[1], to_aim[0]) - moving_towards)
        steer = np.clip(-self.gain * error, -1.0, 1.0)
        return np.array([-self.speed, steer], dtype=np.float32)


@dataclass(frozen=True)
class PointCircleController:
    """PointCircle1: follows the circle of ``radius`` counter-clockwise with the aim point's |x|
    held within ``x_limit``, at ``speed`` (m/s, held by feedback on the forward velocity).

    Point's observation (accelerometer, velocimeter, gyro, magnetometer, a 16-bin circle lidar)
    does not give its position directly, so this behaviour policy reads the simulator's state
    (position, heading, velocity); the dataset records the observations only, as DSRL's do. Its
    forward actuator saturates at small commands (a force limit), hence speed feedback instead of
    a proportional command; positive turning commands turn it counter-clockwise."""

    radius: float
    x_limit: float
    speed: float
    lead: float = 0.8
    """How far ahead on the circle the aim point lies, in radians."""
    gain: float = 10.0
    """Turning command per radian of heading error."""
    speed_gain: float = 20.0
    """Forward command per m/s of speed error."""

    def policy_for(self, env) -> Policy:
        # looked up on every step, so a reset that rebuilds the world cannot leave it stale
        return lambda obs: self.act(env.unwrapped.task.agent)

    def source(self) -> dict:
        """How the dataset summary names this behaviour (no x limit: the whole circle)."""
        limit = {"x_limit": self.x_limit} if math.isfinite(self.x_limit) else {}
        return {"label": f"controller, |x| ≤ {self.x_limit:g}, speed {self.speed:g}",
                "radius": self.radius, "speed": self.speed, **limit}  # fmt: skip

    def act(self, agent) -> np.ndarray:
        x, y = agent.pos[:2]
        yaw = math.atan2(agent.mat[1, 0], agent.mat[0, 0])
        aim_angle = math.atan2(y, x) + self.lead  # counter-clockwise ahead
        aim_x = float(np.clip(self.radius * math.cos(aim_angle), -self.x_limit, self.x_limit))
        aim_y = self.radius * math.sin(aim_angle)
        error = _wrap(math.atan2(aim_y - y, aim_x - x) - yaw)
        forward_speed = agent.vel[0] * math.cos(yaw) + agent.vel[1] * math.sin(yaw)
        target_speed = self.speed * max(math.cos(error), 0.0)  # slow down to turn round
        return np.array(
            [
                np.clip(self.speed_gain * (target_speed - forward_speed), -1.0, 1.0),
                np.clip(self.gain * error, -1.0, 1.0),
            ],
            dtype=np.float32,
        )


@dataclass(frozen=True)
class PointGoalController:
    """PointGoal1: drives to the goal at ``speed`` (m/s, held by feedback on the forward
    velocity), pushed away from every hazard whose edge lies within ``clearance`` + ``reach`` and
    round it on the goal's side, slowing down as it nears one; a negative ``clearance`` drives
    straight through the hazards.

    ``sensing="state"`` reads the simulator's positions of the robot, goal and hazards, which the
    recorded observations only hint at; ``sensing="lidar"`` steers from the observation itself
    (goal and hazard lidars, velocimeter), so that an agent that sees what it saw can learn its
    choices."""

    clearance: float
    speed: float
    sensing: str = "state"
    reach: float = 0.6
    """How far beyond the clearance a hazard starts to push (m)."""
    push: float = 3.0
    """Weight of the push away from a hazard at the clearance, against 1 towards the goal."""
    detour: float = 1.5
    """Weight of the push round a hazard at the clearance."""
    brake: float = 0.7
    """Share of the speed shed at the clearance of the nearest hazard."""
    gain: float = 10.0
    speed_gain: float = 20.0

    def __post_init__(self):
        if self.sensing not in POINT_GOAL_SENSING:
            raise ConfigError(
                f"controller.sensing must be one of {', '.join(POINT_GOAL_SENSING)}, "
                f"got {self.sensing!r}"
            )

    def policy_for(self, env) -> Policy:
        if self.sensing == "lidar":
            layout = LidarLayout.of(env.unwrapped.task)  # fixed by the task's config
            return lambda obs: self.act_on_lidar(obs, layout)
        # looked up on every step: the goal moves when reached, a reset rebuilds the world
        return lambda obs: self.act(env.unwrapped.task)

    def source(self) -> dict:
        """How the dataset summary names this behaviour."""
        avoid = "straight through hazards" if self.clearance < 0 else (
            f"clearance {self.clearance:g}")  # fmt: skip
        source = {"label": f"controller, {avoid}, speed {self.speed:g}",
                  "clearance": self.clearance, "speed": self.speed}  # fmt: skip
        if self.sensing == "lidar":  # the state controllers' summaries stay as they were
            source.update(label=source["label"] + ", from lidar", sensing="lidar")
        return source

    def act(self, task) -> np.ndarray:
        """The action from the simulator's state (world frame)."""
        agent = task.agent
        position = np.asarray(agent.pos[:2])
        yaw = math.atan2(agent.mat[1, 0], agent.mat[0, 0])
        to_goal = np.asarray(task.goal.pos[:2]) - position
        from_hazards = [position - np.asarray(hazard[:2]) for hazard in task.hazards.pos]
        forward_speed = agent.vel[0] * math.cos(yaw) + agent.vel[1] * math.sin(yaw)
        return self._command(to_goal, from_hazards, task.hazards.size, yaw, forward_speed)

    def act_on_lidar(self, obs: np.ndarray, layout: LidarLayout) -> np.ndarray:
        """The action from the observation alone, in the robot's frame (what the lidars say: see
        :class:`LidarLayout`). Past the lidar's range (goal lidar dark) it drives straight on."""
        bearing = layout.goal_bearing(obs)
        to_goal = np.array([math.cos(bearing), math.sin(bearing)])
        from_hazards = layout.from_hazards(obs)
        return self._command(
            to_goal, from_hazards, layout.hazard_size, 0.0, float(obs[layout.forward_speed])
        )

    def _command(self, to_goal, from_hazards, hazard_size, yaw, forward_speed) -> np.ndarray:
        """Steering and throttle towards ``to_goal``, pushed off the hazards at offsets
        ``from_hazards`` (robot minus hazard centre), all in a frame where the robot faces ``yaw``."""
        wanted = to_goal / max(float(np.linalg.norm(to_goal)), 1e-6)
        nearness = 0.0  # 1 at the clearance of the nearest hazard, 0 beyond its reach
        if self.clearance >= 0:
            keep_out = hazard_size + self.clearance
            for away in from_hazards:
                distance = max(float(np.linalg.norm(away)), 1e-6)
                near = min(max((keep_out + self.reach - distance) / self.reach, 0.0), 1.0)
                if near == 0.0:
                    continue
                away = away / distance
                round_it = np.array([-away[1], away[0]])
                if np.dot(round_it, to_goal) < 0:  # go round on the goal's side
                    round_it = -round_it
                wanted = wanted + self.push * near**2 * away + self.detour * near * round_it
                nearness = max(nearness, near)
        error = _wrap(math.atan2(wanted[1], wanted[0]) - yaw)
        target_speed = self.speed * max(math.cos(error), 0.0) * (1.0 - self.brake * nearness)
        return np.array(
            [
                np.clip(self.speed_gain * (target_speed - forward_speed), -1.0, 1.0),
                np.clip(self.gain * error, -1.0, 1.0),
            ],
            dtype=np.float32,
        )


POINT_GOAL_SENSING = ("state", "lidar")
"""What a PointGoal1 controller steers from."""


@dataclass(frozen=True)
class LidarLayout:
    """Where Safety-Gymnasium puts the goal and hazard lidars and the velocimeter in the flat
    observation (in its observation-space order), and how the lidar encodes distance."""

    goal: slice
    hazards: slice
    forward_speed: int
    bins: int
    max_dist: float
    hazard_size: float

    @property
    def bin_angle(self) -> float:
        return 2 * math.pi / self.bins

    @property
    def bin_middles(self) -> np.ndarray:
        return (np.arange(self.bins) + 0.5) * self.bin_angle

    def goal_bearing(self, obs: np.ndarray) -> float:
        """The goal's angle from the robot's heading (radians, anticlockwise): the strongest bin
        plus the share the lidar aliased into the next one; 0 with the goal out of range."""
        goal = obs[self.goal]
        strongest = int(np.argmax(goal))
        if goal[strongest] <= 0:
            return 0.0
        share = min(max(goal[(strongest + 1) % self.bins] / goal[strongest], 0.0), 1.0)
        return (strongest + share) * self.bin_angle

    def from_hazards(self, obs: np.ndarray) -> list[np.ndarray]:
        """Robot minus hazard centre, one per lit bin of the hazard lidar, at the bin's middle and
        the distance its reading encodes (the nearest hazard in that bin)."""
        return [
            -self.max_dist * (1.0 - reading) * np.array([math.cos(angle), math.sin(angle)])
            for reading, angle in zip(obs[self.hazards], self.bin_middles, strict=True)
            if reading > 0
        ]

    @classmethod
    def of(cls, task) -> LidarLayout:
        conf = task.lidar_conf
        if conf.type != "pseudo" or not conf.max_dist:
            raise ConfigError(
                f"controller.sensing=lidar reads a pseudo lidar with a max_dist, this task has "
                f"type {conf.type!r}, max_dist {conf.max_dist!r}: use sensing=state"
            )
        where, start = {}, 0
        for key, space in task.obs_info.obs_space_dict.items():
            size = int(np.prod(space.shape))
            where[key] = slice(start, start + size)
            start += size
        return cls(goal=where["goal_lidar"], hazards=where["hazards_lidar"],
                   forward_speed=where["velocimeter"].start, bins=conf.num_bins,
                   max_dist=float(conf.max_dist), hazard_size=float(task.hazards.size))  # fmt: skip


CONTROLLER_DEFAULTS: dict[str, dict[str, list[float]]] = {
    "OfflineCarCircle-v0": {"radii": [3.0, 4.5, 5.5, 6.0, 6.5, 7.5], "speeds": [0.4, 0.7, 1.0]},
    "OfflinePointCircle1Gymnasium-v0": {
        "radii": [1.5], "x_limits": [0.6, 0.8, 0.95, 1.1, 1.3], "speeds": [0.5, 1.0, 1.5]},
    "OfflinePointGoal1Gymnasium-v0": {
        "clearances": [-1.0, 0.0, 0.15], "speeds": [0.7, 1.0, 1.5]},
}  # fmt: skip
"""The controllers' settings per task (radii, speeds, PointCircle1's x limits, PointGoal1's
clearances): both sides of the cost limit at several levels of reward."""
CONTROLLER_TASKS = tuple(CONTROLLER_DEFAULTS)
"""Tasks a scripted controller is written for."""


def controller_defaults(task_name: str) -> dict[str, list[float]]:
    """:data:`CONTROLLER_DEFAULTS` of ``task_name``; a clear error for a task without
    controllers."""
    if task_name not in CONTROLLER_DEFAULTS:
        raise ConfigError(
            f"the scripted controllers are written for {', '.join(CONTROLLER_TASKS)}, not "
            f"{task_name}; use --behaviour_source ppo for this task."
        )
    return CONTROLLER_DEFAULTS[task_name]


def make_controllers(
    task_name: str,
    radii: list[float] | None,
    speeds: list[float],
    x_limits: list[float] | None,
    clearances: list[float] | None = None,
    sensing: str | None = None,
    steering_gain: float | None = None,
    speed_gain: float | None = None,
) -> list[CircleController] | list[PointCircleController] | list[PointGoalController]:
    """One controller per radius x (x limit x) speed for the circle tasks, per clearance x speed
    for PointGoal1; a clear error for a setting the task's controllers do not have."""
    controller_defaults(task_name)  # a task with controllers
    misplaced = {
        "x_limits": (x_limits, "OfflinePointCircle1Gymnasium-v0"),
        "clearances": (clearances, "OfflinePointGoal1Gymnasium-v0"),
        "sensing": (sensing, "OfflinePointGoal1Gymnasium-v0"),
        "steering_gain": (steering_gain, "OfflinePointGoal1Gymnasium-v0"),
        "speed_gain": (speed_gain, "OfflinePointGoal1Gymnasium-v0"),
        "radii": (radii, "OfflineCarCircle-v0 and OfflinePointCircle1Gymnasium-v0"),
    }
    for name, (value, task) in misplaced.items():
        if value is not None and task_name not in task:
            raise ConfigError(
                f"controller.{name} is for {task}; {task_name}'s controllers do not have it: "
                f"drop {name}."
            )
    if task_name == "OfflinePointGoal1Gymnasium-v0":
        gains = {
            name: value
            for name, value in (("gain", steering_gain), ("speed_gain", speed_gain))
            if value is not None
        }
        return [PointGoalController(c, speed, sensing or "state", **gains)
                for c in clearances or [] for speed in speeds]  # fmt: skip
    if task_name == "OfflineCarCircle-v0":
        return [CircleController(radius, speed) for radius in radii or [] for speed in speeds]
    return [
        PointCircleController(radius, x_limit, speed)
        for radius in radii or []
        for x_limit in (x_limits if x_limits is not None else [math.inf])
        for speed in speeds
    ]
