"""An in-memory DSRL dataset: the seven arrays, an optional poison mask, validation and splitting."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from osrl_unlearn.errors import UserError
from osrl_unlearn.tasks import TaskSpec

DSRL_KEYS = (
    "observations",
    "next_observations",
    "actions",
    "rewards",
    "costs",
    "terminals",
    "timeouts",
)
FLOAT_KEYS = ("observations", "next_observations", "actions", "rewards", "costs")
FLAG_KEYS = ("terminals", "timeouts")
MATRIX_KEYS = ("observations", "next_observations", "actions")
POISON_MASK_KEY = "poison_mask"


class DatasetError(UserError):
    """A dataset that cannot be used; the message names the problem and the fix."""


@dataclass
class OfflineDataset:
    """DSRL's seven arrays (float32 values, bool flags), plus the rows an attacker injected.

    Rows are transitions in episode order: an episode ends at a row whose ``terminals`` or
    ``timeouts`` flag is set (OSRL's ``done``), so whole episodes are contiguous row ranges.
    """

    observations: np.ndarray
    next_observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    poison_mask: np.ndarray | None = None
    """True on injected (forget) rows; None for a file that carries no mask."""
    attrs: dict[str, Any] = field(default_factory=dict)
    """HDF5 attributes (task, generator settings, seed, format version...)."""
    source: str = "<memory>"
    """Where the data came from, for error messages."""

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        *,
        attrs: dict[str, Any] | None = None,
        source: str = "<memory>",
        task: TaskSpec | None = None,
    ) -> OfflineDataset:
        """Validates ``arrays`` (DSRL keys, optional ``poison_mask``) and converts their dtypes.

        Raises:
            DatasetError: a missing key, an empty or ragged dataset, wrong shapes (against ``task``
                when given), non-finite values or a malformed poison mask.
        """
        missing = [key for key in DSRL_KEYS if key not in arrays]
        if missing:
            raise DatasetError(
                f"{source}: missing DSRL key(s) {', '.join(missing)}. A DSRL dataset holds all of "
                f"{', '.join(DSRL_KEYS)}; regenerate the file (`osrl-unlearn make-dataset`) or "
                "add the missing arrays."
            )
        values = {key: np.asarray(arrays[key]) for key in DSRL_KEYS}
        n = len(values["observations"])
        if n == 0:
            raise DatasetError(f"{source}: the dataset is empty (0 transitions).")
        for key in DSRL_KEYS:
            array = values[key]
            if array.ndim == 2 and key not in MATRIX_KEYS and array.shape[1] == 1:
                array = values[key] = array[:, 0]  # DSRL squeezes (N, 1) columns too
            if len(array) != n:
                raise DatasetError(
                    f"{source}: {key} has {len(array)} rows but observations has {n}; all DSRL "
                    "arrays must have one row per transition."
                )
            expected_ndim = 2 if key in MATRIX_KEYS else 1
            if array.ndim != expected_ndim:
                raise DatasetError(
                    f"{source}: {key} has shape {array.shape}; expected "
                    f"{'(N, dim)' if expected_ndim == 2 else '(N,)'}."
                )
        if values["next_observations"].shape != values["observations"].shape:
            raise DatasetError(
                f"{source}: next_observations has shape {values['next_observations'].shape} but "
                f"observations has {values['observations'].shape}."
            )
        if task is not None:
            check_task_shapes(values, task, source)
        for key in FLOAT_KEYS:
            values[key] = values[key].astype(np.float32, copy=False)
            bad = ~np.isfinite(values[key])
            if bad.any():
                rows = np.flatnonzero(bad.reshape(n, -1).any(axis=1))
                raise DatasetError(
                    f"{source}: {key} has {len(rows)} row(s) with NaN or infinite values (first at "
                    f"row {rows[0]}). Drop or repair those transitions before training."
                )
        negative = np.flatnonzero(values["costs"] < 0)
        if len(negative):
            raise DatasetError(
                f"{source}: costs has {len(negative)} negative value(s) (first {values['costs'][negative[0]]:g} "
                f"at row {negative[0]}); DSRL costs are 0 or more. Fix the cost labels (e.g. "
                "np.clip(costs, 0, None) if the sign is an artefact) and write the file again."
            )
        if task is not None:
            check_action_space(values["actions"], task, source)
        for key in FLAG_KEYS:
            values[key] = check_flags(values[key], key, source)
        mask = arrays.get(POISON_MASK_KEY)
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (n,):
                raise DatasetError(
                    f"{source}: poison_mask has shape {mask.shape}; expected ({n},), one flag per "
                    "transition."
                )
            mask = check_flags(mask, POISON_MASK_KEY, source)
        return cls(**values, poison_mask=mask, attrs=dict(attrs or {}), source=source)

    def __len__(self) -> int:
        return len(self.observations)

    @property
    def obs_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    @property
    def done(self) -> np.ndarray:
        """OSRL's ``done``: an episode ends at a terminal or a time-out."""
        return self.terminals | self.timeouts

    def arrays(self) -> dict[str, np.ndarray]:
        """The DSRL arrays (plus ``poison_mask`` when present), as stored."""
        out = {key: getattr(self, key) for key in DSRL_KEYS}
        if self.poison_mask is not None:
            out[POISON_MASK_KEY] = self.poison_mask
        return out

    @property
    def task(self) -> str:
        """The dsrl task id the data was recorded in (its ``task`` attribute)."""
        task = self.attrs.get("task")
        if not isinstance(task, str) or not task:
            raise DatasetError(
                f"{self.source}: no 'task' attribute says which task the data is from; pass it "
                "with --task (e.g. --task OfflineCarCircle-v0), or read_hdf5(path, task=...)."
            )
        return task

    def content_hash(self) -> str:
        """SHA-256 over the seven arrays' bytes: names a forget set (or any split) exactly."""
        digest = hashlib.sha256()
        for key in DSRL_KEYS:
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(getattr(self, key)).tobytes())
        return digest.hexdigest()

    def episode_bounds(self) -> np.ndarray:
        """(E, 2) array of [start, end) row ranges, one per episode; an unfinished tail counts."""
        ends = np.flatnonzero(self.done) + 1
        if len(ends) == 0 or ends[-1] != len(self):
            ends = np.append(ends, len(self))
        starts = np.concatenate([[0], ends[:-1]])
        return np.stack([starts, ends], axis=1)

    def episode_returns(self) -> tuple[np.ndarray, np.ndarray]:
        """Undiscounted (reward, cost) return of every episode, in row order."""
        starts = self.episode_bounds()[:, 0]
        return (
            np.add.reduceat(self.rewards.astype(np.float64), starts),
            np.add.reduceat(self.costs.astype(np.float64), starts),
        )

    def subset(self, rows: np.ndarray, source: str) -> OfflineDataset:
        """The transitions at boolean ``rows``, in order (mask and attributes carried along)."""
        return OfflineDataset(
            **{key: getattr(self, key)[rows] for key in DSRL_KEYS},
            poison_mask=None if self.poison_mask is None else self.poison_mask[rows],
            attrs=dict(self.attrs),
            source=source,
        )

    def split(self) -> tuple[OfflineDataset, OfflineDataset]:
        """(keep, forget): the clean rows and the injected rows named by ``poison_mask``.

        Raises:
            DatasetError: the dataset has no poison mask, or one side of the split is empty.
        """
        if self.poison_mask is None:
            raise DatasetError(
                f"{self.source}: no poison_mask, so keep and forget sets cannot be split. Use a "
                "file written by `osrl-unlearn poison`, or add a boolean poison_mask array."
            )
        forget = int(self.poison_mask.sum())
        if forget == 0:
            raise DatasetError(
                f"{self.source}: poison_mask marks no rows: the forget set is empty."
            )
        if forget == len(self):
            raise DatasetError(
                f"{self.source}: poison_mask marks every row: the keep set is empty."
            )
        return (
            self.subset(~self.poison_mask, f"{self.source}[keep]"),
            self.subset(self.poison_mask, f"{self.source}[forget]"),
        )


def check_task_shapes(values: dict[str, np.ndarray], task: TaskSpec, source: str) -> None:
    """Raises when the observation or action width does not match ``task``'s spaces."""
    for key, expected in (("observations", task.obs_dim), ("actions", task.act_dim)):
        width = values[key].shape[1]
        if width != expected:
            raise DatasetError(
                f"{source}: {key} have {width} features but {task.name} has {expected}. "
                "Is this file for another task? Pass the task the data was collected in."
            )


def check_flags(values: np.ndarray, key: str, source: str) -> np.ndarray:
    """``values`` as booleans; raises unless every value is 0/1 (a float 0.3 is not a flag)."""
    if values.dtype == bool:
        return values
    if values.dtype.kind not in "iuf" or not np.isin(values, (0, 1)).all():
        if values.dtype.kind in "iuf":
            bad = np.flatnonzero(~np.isin(values, (0, 1)))
            where = f" ({len(bad)} row(s), first {values[bad[0]]!r} at row {bad[0]})"
        else:
            where = f" (dtype {values.dtype})"
        raise DatasetError(
            f"{source}: {key} must hold only 0/1 or True/False{where}; it is a per-transition "
            "flag. Store it as booleans (e.g. values > 0.5 if that is what was meant)."
        )
    return values.astype(bool)


def check_action_space(actions: np.ndarray, task: TaskSpec, source: str) -> None:
    """Raises when an action lies outside the task's action box [-max_action, max_action]."""
    bound = task.max_action * (1 + 1e-5)
    outside = np.flatnonzero((np.abs(actions) > bound).any(axis=1))
    if len(outside):
        worst = float(np.abs(actions).max())
        raise DatasetError(
            f"{source}: {len(outside)} action(s) lie outside {task.name}'s action space "
            f"[-{task.max_action:g}, {task.max_action:g}] (first at row {outside[0]}, largest "
            f"|a| = {worst:g}); clip or rescale the actions (np.clip) and write the file again."
        )
