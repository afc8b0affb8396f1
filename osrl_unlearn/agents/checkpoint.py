"""OSRL run folders: build the right agent from ``config.yaml`` + ``checkpoint/model.pt``, and
write run folders that OSRL's own ``load_config_and_model`` and eval scripts read.

A run folder is untrusted input: checkpoints are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from osrl_unlearn.errors import UserError
from osrl_unlearn.tasks import get_task

COMMON_KEYS = ("a_hidden_sizes", "c_hidden_sizes", "gamma", "cost_limit", "episode_len")
AGENT_KEYS = {
    "bcql": ("vae_hidden_sizes", "sample_action_num", "PID", "tau", "lmbda", "beta", "phi",
             "num_q", "num_qc"),
    "bearl": ("vae_hidden_sizes", "sample_action_num", "PID", "tau", "lmbda", "beta", "num_q",
              "num_qc", "mmd_sigma", "target_mmd_thresh", "start_update_policy_step"),
    "cpq": ("vae_hidden_sizes", "sample_action_num", "tau", "beta", "num_q", "num_qc",
            "qc_scalar"),
    "coptidice": ("alpha", "f_type", "cost_ub_epsilon", "num_nu", "num_chi"),
}  # fmt: skip
"""The ``config.yaml`` keys OSRL's ``examples/eval/eval_<algo>.py`` rebuilds each agent from."""


class CheckpointError(UserError):
    """A run folder that cannot be loaded; the message says what is wrong."""


def agent_class(name: str) -> type:
    from osrl_unlearn.agents import AGENTS

    try:
        return AGENTS[name.lower()]
    except KeyError:
        raise CheckpointError(
            f"unknown agent {name!r}; expected one of {', '.join(AGENTS)}"
        ) from None


def build_agent(name: str, config: dict[str, Any], device: str = "cpu") -> torch.nn.Module:
    """A fresh agent of type ``name`` built from an OSRL training config, as OSRL's eval does."""
    name = name.lower()
    cls = agent_class(name)
    task = get_task(config["task"])
    kwargs = {key: config[key] for key in (*COMMON_KEYS, *AGENT_KEYS[name]) if key in config}
    if name == "coptidice":
        # OSRL's eval passes these placeholders; the dataset statistics are not saved.
        kwargs.update(init_state_propotion=1.0, observations_std=np.zeros(1, np.float32),
                      actions_std=np.zeros(1, np.float32), f_type=config.get("f_type", "softchi"))  # fmt: skip
    return cls(
        state_dim=task.obs_dim,
        action_dim=task.act_dim,
        max_action=task.max_action,
        device=device,
        **kwargs,
    ).to(device)


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: no config.yaml; pass an OSRL run folder.")
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict) or "task" not in config:
        raise CheckpointError(f"{path}: not an OSRL training config (no 'task' key).")
    return config


def detect_agent(config: dict[str, Any]) -> str:
    """The agent name a config was written for (our ``agent`` key, else OSRL's ``prefix``)."""
    for key in ("agent", "prefix"):
        value = str(config.get(key, "")).lower()
        if value in AGENT_KEYS:
            return value
    raise CheckpointError(
        "cannot tell which agent the run folder holds (no 'agent' or 'prefix' key naming one of "
        f"{', '.join(AGENT_KEYS)}); pass agent=... explicitly."
    )


def load_agent(
    run_dir: str | os.PathLike, agent: str | None = None, *, best: bool = False, device: str = "cpu"
) -> torch.nn.Module:
    """Builds the unlearning subclass of the agent in an OSRL run folder and loads its weights.

    Args:
        run_dir: a folder with ``config.yaml`` and ``checkpoint/model.pt`` (``model_best.pt``).
        agent: ``bcql``, ``bearl``, ``cpq`` or ``coptidice``; read from the config when None.
        best: load ``model_best.pt`` instead of ``model.pt``.
        device: where the agent lives.

    Raises:
        CheckpointError: missing files, an unknown agent, or weights that do not fit the agent
            (for instance a checkpoint trained on another task).
    """
    config = read_config(run_dir)
    name = agent or detect_agent(config)
    checkpoint = Path(run_dir) / "checkpoint" / ("model_best.pt" if best else "model.pt")
    if not checkpoint.is_file():
        raise CheckpointError(f"{run_dir}: no {checkpoint.relative_to(run_dir)}.")
    try:
        payload = torch.load(checkpoint, map_location=device, weights_only=True)
    except Exception as exc:  # a pickle with code in it, or a corrupt file
        raise CheckpointError(f"{checkpoint}: not a plain tensor checkpoint ({exc}).") from exc
    if not isinstance(payload, dict) or "model_state" not in payload:
        raise CheckpointError(f"{checkpoint}: expected OSRL's {{'model_state': state_dict}}.")
    model = build_agent(name, config, device)
    try:
        model.load_state_dict(payload["model_state"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{checkpoint} does not fit a {name} agent for {config['task']} built from its "
            f"config.yaml: {str(exc).splitlines()[0]} (was it trained on another task?)"
        ) from exc
    model.eval()
    return model


def save_run(
    model: torch.nn.Module,
    run_dir: str | os.PathLike,
    config: dict[str, Any],
    metadata: dict[str, Any] | None = None,
    files: dict[str, str] | None = None,
    *,
    replace: bool = False,
) -> Path:
    """Writes an OSRL run folder (``config.yaml``, ``checkpoint/model.pt``) plus
    ``unlearning.json`` and any extra text ``files``, all at once: built in a temporary folder,
    then renamed.

    Raises:
        FileExistsError: ``run_dir`` exists and ``replace`` is False (an input run is never
            overwritten unless asked).
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not replace:
        raise FileExistsError(
            f"{run_dir} exists; write the new run to another folder (or pass --force)."
        )
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", dir=run_dir.parent))
    try:
        (tmp / "checkpoint").mkdir()
        (tmp / "config.yaml").write_text(yaml.safe_dump(_plain(config), sort_keys=True))
        torch.save({"model_state": model.state_dict()}, tmp / "checkpoint" / "model.pt")
        if metadata is not None:
            (tmp / "unlearning.json").write_text(json.dumps(_plain(metadata), indent=1))
        for name, text in (files or {}).items():
            (tmp / name).write_text(text)
        if run_dir.exists():  # replace: the old run goes only once the new one is complete
            shutil.rmtree(run_dir)
        os.rename(tmp, run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run_dir


def _plain(value: Any) -> Any:
    """YAML/JSON-safe copy (tuples to lists, numpy scalars to Python)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
