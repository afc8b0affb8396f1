"""Repair an OSRL run folder from a poisoned DSRL file: load, unlearn by any method, save.

The library path behind ``osrl-unlearn unlearn`` and the demo: the input run and dataset are only
read; the repaired agent is a new OSRL run folder with ``unlearning.json`` (method, settings, wall
time, forget-set hash) and ``history.csv`` (every step's metrics, for the unlearning curves).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from osrl_unlearn.agents.checkpoint import detect_agent, load_agent, read_config, save_run
from osrl_unlearn.data import read_hdf5, unlearning_samplers
from osrl_unlearn.unlearn.config import (
    FinetuneConfig,
    RelabelConfig,
    SafeRuleConfig,
    TrajDeleterConfig,
)
from osrl_unlearn.unlearn.loop import UnlearningError, UnlearningHistory
from osrl_unlearn.unlearn.metadata import unlearning_metadata
from osrl_unlearn.unlearn.methods import DEFAULT_METHOD, method_config


@dataclass
class RepairResult:
    run_dir: Path
    history: UnlearningHistory
    agent: torch.nn.Module


def history_csv(history: UnlearningHistory) -> str:
    """The per-step metrics as CSV text (one row per step; blank where a step lacks a metric)."""
    keys = sorted({key for metrics in history.metrics for key in metrics})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["step", *keys])
    writer.writeheader()
    for step, metrics in enumerate(history.metrics):
        writer.writerow({"step": step, **metrics})
    return out.getvalue()


def repair_run(
    run_dir: str | os.PathLike,
    dataset: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str = DEFAULT_METHOD,
    config: SafeRuleConfig | FinetuneConfig | RelabelConfig | TrajDeleterConfig | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    replace: bool = False,
    show_progress: bool = True,
    callback=None,
) -> RepairResult:
    """Repairs the agent of ``run_dir`` with ``method``, forgetting the rows ``dataset``'s
    ``poison_mask`` flags, and writes the result to ``out``. ``callback(step, metrics)`` runs
    after every step (see ``unlearn``).

    Raises:
        CheckpointError / DatasetError / UnlearningError: unusable inputs, with the fix named.
        FileExistsError: ``out`` exists and ``replace`` is False.
    """
    out = Path(out)
    if out.exists() and not replace:
        raise FileExistsError(f"{out} exists; pass --force to replace it or choose --out.")
    if Path(out).resolve() == Path(run_dir).resolve():
        raise UnlearningError(f"--out is the input run {run_dir}; write the repair elsewhere.")
    run_config = read_config(run_dir)
    name = detect_agent(run_config)
    agent = load_agent(run_dir, name)
    data = read_hdf5(dataset, run_config["task"])
    config = method_config(method, config, agent.osrl_key)
    batch_size = batch_size or int(run_config.get("batch_size", 512))
    keep, forget = unlearning_samplers(data, agent, batch_size, seed)
    torch.manual_seed(seed)
    history = agent.unlearn(
        keep,
        forget,
        method=method,
        config=config,
        steps=steps,
        callback=callback,
        show_progress=show_progress,
    )
    metadata = unlearning_metadata(method, config, history, data.split()[1], str(run_dir))
    metadata["dataset"] = str(dataset)
    written = save_run(
        agent,
        out,
        {**run_config, "agent": name},
        metadata,
        {"history.csv": history_csv(history)},
        replace=replace,
    )
    return RepairResult(written, history, agent)
