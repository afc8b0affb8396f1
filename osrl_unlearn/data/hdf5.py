"""Reading and writing DSRL HDF5 files (the seven flat arrays, ``poison_mask``, attributes)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from osrl_unlearn.data.dataset import DSRL_KEYS, POISON_MASK_KEY, DatasetError, OfflineDataset
from osrl_unlearn.io import write_bytes
from osrl_unlearn.tasks import TaskSpec, get_task

FORMAT_VERSION = "osrl-unlearn/dsrl-1"
"""Written as the ``format_version`` attribute of every file this package creates."""


def read_hdf5(path: str | os.PathLike, task: TaskSpec | str | None = None) -> OfflineDataset:
    """Loads and validates a DSRL HDF5 file.

    Args:
        path: the file.
        task: check the arrays against this task's spaces; when None, the file's ``task``
            attribute is used if it has one.

    Raises:
        DatasetError: the file is missing, unreadable or not a valid DSRL dataset.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"{path}: no such file. Pass an existing DSRL .hdf5 file, or make one with "
            "`osrl-unlearn make-dataset --task <task>`."
        )
    try:
        with h5py.File(path, "r") as handle:
            arrays = {}
            for key in (*DSRL_KEYS, POISON_MASK_KEY):
                if key in handle:
                    if not isinstance(handle[key], h5py.Dataset):
                        raise DatasetError(
                            f"{path}: '{key}' is an HDF5 group, not an array; a DSRL file holds "
                            "its arrays at the top level (regenerate it with make-dataset)."
                        )
                    arrays[key] = handle[key][()]
            attrs = {key: _from_attr(value) for key, value in handle.attrs.items()}
    except (OSError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(
            f"{path}: not a readable HDF5 file ({reason}); pass a DSRL .hdf5 file, or make one "
            "with `osrl-unlearn make-dataset`."
        ) from exc
    if isinstance(task, str):
        task = get_task(task)
    if task is None and isinstance(attrs.get("task"), str):
        task = get_task(attrs["task"])
    if task is not None and attrs.get("task") not in (None, task.name):
        raise DatasetError(
            f"{path}: the file was made for {attrs['task']}, not {task.name}. Pass the file made "
            f"for {task.name}, or train and repair on {attrs['task']}."
        )
    if task is not None and "task" not in attrs:
        attrs["task"] = task.name  # the caller named it: the data now knows its task
    return OfflineDataset.from_arrays(arrays, attrs=attrs, source=str(path), task=task)


def load_dataset(source: str | os.PathLike, task: str | None = None) -> OfflineDataset:
    """Loads a dataset by file path, or by dsrl task id from the DSRL cache.

    Args:
        source: a path to a DSRL .hdf5 file, or a task id such as ``OfflineCarCircle-v0``, which
            reads the file dsrl's ``env.get_dataset()`` would use (``$DSRL_DATASET_DIR``).
        task: validate against this task (defaults to the file's own ``task`` attribute).
    """
    text = str(source)
    if text.startswith("Offline") and not Path(text).exists():
        spec = get_task(text)
        cached = spec.dsrl_cache_path
        if not cached.is_file():
            raise DatasetError(
                f"no DSRL dataset for {spec.name} at {cached}. DSRL downloads need internet: put "
                "the file there, pass a file path instead, or generate one locally with "
                f"`osrl-unlearn make-dataset --task {spec.name}`."
            )
        return read_hdf5(cached, spec)
    return read_hdf5(text, task)


def write_hdf5(
    path: str | os.PathLike,
    dataset: OfflineDataset,
    attrs: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Writes ``dataset`` as a DSRL file atomically (temp file, then rename).

    Arrays are stored as DSRL stores them (float32 values, bool flags) so dsrl's own
    ``env.get_dataset(h5path=...)`` reads the file; ``poison_mask`` is written when present.
    Attributes: ``dataset.attrs``, then ``attrs``, then ``format_version``; nested values as JSON.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another output path or allow overwriting.")
    merged = {**dataset.attrs, **(attrs or {}), "format_version": FORMAT_VERSION}
    # Built in memory, then written by plain file I/O: HDF5's own writer crashes the process
    # (segmentation fault) when the disk fills up, while a plain write fails cleanly (ENOSPC).
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        for key, array in dataset.arrays().items():
            handle.create_dataset(key, data=array, compression="gzip", compression_opts=1)
        for key, value in merged.items():
            handle.attrs[key] = _to_attr(value)
    return write_bytes(path, buffer.getvalue(), overwrite=overwrite)


def _to_attr(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, np.integer, np.floating, np.bool_)):
        return value
    return json.dumps(value, sort_keys=True)


def _from_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_with_dsrl(path: str | os.PathLike, task: str) -> int:
    """Reads ``path`` with dsrl's own ``env.get_dataset(h5path=...)``; returns its row count.

    Raises:
        DatasetError: dsrl's loader rejected the file (its assertion message is kept).
    """
    import contextlib
    import io

    from osrl_unlearn.tasks import make_env

    env = make_env(task)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # dsrl's tqdm bar over the keys
            data = env.get_dataset(h5path=str(path))
    except AssertionError as exc:
        raise DatasetError(f"{path}: dsrl's loader rejected the file: {exc}") from exc
    finally:
        env.close()
    return len(data["observations"])
