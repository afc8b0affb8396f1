"""Which data a grid's committed results were measured on, so that a grid resumed elsewhere never
pools results of two different datasets.

A grid resumes from its committed results, but its datasets come from the cache, and a cache
that is gone is remade: the same settings and seed give the same file only on the same kind of
CPU (behaviour and adversary training, and the simulators, take other floating-point paths on
other CPUs; docs/data.md). So each task's files are recorded next to the results
(``<results_dir>/data/<task>.json``: the content hash of the clean file and of each poisoned
file, and the clean file's competence threshold), and a grid whose remade files differ stops
before measuring anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from osrl_unlearn.errors import UserError
from osrl_unlearn.io import write_json


class DataMismatchError(UserError):
    """The files made here are not those a results folder's results were measured on."""


def record_path(results_dir: str | Path, task: str) -> Path:
    return Path(results_dir) / "data" / f"{task}.json"


def file_hash(data) -> str:
    """SHA-256 of a dataset's arrays and its poison mask (which rows are the forget set)."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256(data.content_hash().encode())
    if data.poison_mask is not None:
        digest.update(np.packbits(data.poison_mask).tobytes())
    return digest.hexdigest()


def fingerprint(clean_path: str, poisoned_paths: list[str], cost_limit: float) -> dict[str, Any]:
    """Hashes of a task's clean and poisoned files (by file name: the name carries the
    attack's settings, not the data), and the clean file's competence threshold."""
    from osrl_unlearn.benchmark.competence import competence_threshold
    from osrl_unlearn.data import read_hdf5

    clean = read_hdf5(clean_path)
    return {
        "clean": {"content_hash": clean.content_hash(),
                  "competence_threshold": competence_threshold(clean, cost_limit)},
        "poisoned": {Path(p).name: file_hash(read_hdf5(p)) for p in poisoned_paths},
    }  # fmt: skip


def check_or_record(results_dir: str | Path, task: str, current: dict[str, Any]) -> None:
    """Compares a task's files (:func:`fingerprint`) with those its results were measured on,
    and records any not recorded yet.

    Results from before the record existed are checked by the competence threshold their
    ``clean.json`` files hold (it is a function of the clean file).

    Raises:
        DataMismatchError: a file differs from the one recorded, or the clean file's competence
            threshold from the one the results hold.
    """
    path = record_path(results_dir, task)
    on_file = json.loads(path.read_text()) if path.is_file() else None
    recorded = on_file or {"clean": legacy_clean(results_dir, task), "poisoned": {}}
    clean, known = recorded["clean"], current["clean"]
    for key in ("content_hash", "competence_threshold"):
        if clean.get(key) is not None and clean[key] != known[key]:
            raise mismatch(results_dir, task, "clean file", key, clean[key], known[key])
    for name, digest in current["poisoned"].items():
        if recorded["poisoned"].get(name, digest) != digest:
            raise mismatch(results_dir, task, name, "content_hash", recorded["poisoned"][name],
                           digest)  # fmt: skip
    merged = {"task": task, "clean": known,
              "poisoned": {**recorded["poisoned"], **current["poisoned"]}}  # fmt: skip
    if merged != on_file:
        write_json(path, merged)


def legacy_clean(results_dir: str | Path, task: str) -> dict[str, Any]:
    """What results from before the record existed say of the clean file: the competence
    threshold their ``clean.json`` files hold (None when there are none)."""
    thresholds = set()
    for result in sorted((Path(results_dir) / "cells" / task).glob("*/seed*/clean.json")):
        value = json.loads(result.read_text()).get("competence_threshold")
        if value is not None:
            thresholds.add(value)
    return {"content_hash": None,
            "competence_threshold": thresholds.pop() if len(thresholds) == 1 else None}  # fmt: skip


def mismatch(results_dir, task: str, what: str, key: str, recorded, made) -> DataMismatchError:
    return DataMismatchError(
        f"{task}: the {what} made here ({key} {made}) is not the one the results in "
        f"{results_dir} were measured on ({recorded}): remade on another CPU, the data differs. "
        "Pooling both would mix two datasets; start a new results folder with --results_dir, "
        "or resume on the machine (and cache) the results came from."
    )
