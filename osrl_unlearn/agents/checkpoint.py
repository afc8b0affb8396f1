"""OSRL run folders: build the right agent from ``config.yaml`` + ``checkpoint/model.pt``, and
write run folders that OSRL's own ``load_config_and_model`` and eval scripts read.

A run folder is untrusted input: checkpoints are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from osrl_unlearn.agent_specs import SPECS
from osrl_unlearn.errors import UserError, read_yaml
from osrl_unlearn.tasks import get_task

COMMON_KEYS = ("a_hidden_sizes", "c_hidden_sizes", "gamma", "cost_limit", "episode_len")
AGENT_KEYS = {key: spec.constructor_keys for key, spec in SPECS.items()}
"""The ``config.yaml`` keys OSRL's ``examples/eval/eval_<algo>.py`` rebuilds each agent from."""

AGENTS = {key: spec.agent_class() for key, spec in SPECS.items()}
"""Agent name -> our subclass of OSRL's agent."""


class CheckpointError(UserError):
    """A run folder that cannot be loaded; the message says what is wrong."""


def agent_class(name: str) -> type:
    try:
        return AGENTS[name.lower()]
    except KeyError:
        raise CheckpointError(
            f"unknown agent {name!r}; expected one of {', '.join(AGENTS)}"
        ) from None


def agent_arguments(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments (all but ``device``) OSRL's eval builds agent ``name`` with from
    an OSRL training config: the task's dimensions and the config's agent keys."""
    name = name.lower()
    task = get_task(config["task"])
    kwargs = {key: config[key] for key in (*COMMON_KEYS, *AGENT_KEYS[name]) if key in config}
    if SPECS[name].dataset_statistics:
        # OSRL's eval passes these placeholders; the dataset statistics are not saved.
        kwargs.update(init_state_propotion=1.0, observations_std=np.zeros(1, np.float32),
                      actions_std=np.zeros(1, np.float32), f_type=config.get("f_type", "softchi"))  # fmt: skip
    return dict(state_dim=task.obs_dim, action_dim=task.act_dim, max_action=task.max_action,
                **kwargs)  # fmt: skip


def build_agent(name: str, config: dict[str, Any], device: str = "cpu") -> torch.nn.Module:
    """A fresh agent of type ``name`` built from an OSRL training config, as OSRL's eval does;
    the config is kept as ``model.osrl_config``."""
    cls = agent_class(name)
    model = cls(device=device, **agent_arguments(name, config)).to(device)
    # the whole training config travels with the agent: its reward/cost scales and learning rates
    # are what fine-tuning, retraining and unlearning batches must use
    model.osrl_config = dict(config)
    return model


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: no config.yaml; pass an OSRL run folder.")
    config = read_yaml(path, CheckpointError, str(path), "fix the file or pass another OSRL run "
                       "folder", "pass an OSRL run folder")  # fmt: skip
    if not isinstance(config, dict) or "task" not in config:
        raise CheckpointError(
            f"{path}: not an OSRL training config (no 'task' key); pass an OSRL run folder, or "
            "add `task: <dsrl task id>` to it."
        )
    if not isinstance(config["task"], str):
        raise CheckpointError(
            f"{path}: 'task' is {config['task']!r}, not a dsrl task id; set it to one such as "
            "OfflineCarCircle-v0."
        )
    return config


def detect_agent(config: dict[str, Any]) -> str:
    """The agent name a config was written for (our ``agent`` key, else OSRL's ``prefix``)."""
    for key in ("agent", "prefix"):
        value = str(config.get(key, "")).lower()
        if value in AGENT_KEYS:
            return value
    raise CheckpointError(
        "cannot tell which agent the run folder holds: its config.yaml has no 'agent' or 'prefix' "
        f"key naming one of {', '.join(AGENT_KEYS)}; add one, e.g. `agent: bcql`."
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
    payload = _read_checkpoint(checkpoint, device)
    state = payload["model_state"]
    broken = [key for key, value in state.items() if not _finite(value)]
    if broken:
        raise CheckpointError(
            f"{checkpoint}: {len(broken)} weight tensor(s) hold NaN or infinite values (first "
            f"{broken[0]}); the policy is broken and is refused: retrain it (osrl-unlearn train) "
            "or use a checkpoint saved before training diverged."
        )
    try:
        model = build_agent(name, config, device)
    except UserError:
        raise
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{run_dir}/config.yaml: cannot build a {name} agent from it "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); fix the "
            "layer-size keys (a_hidden_sizes, c_hidden_sizes, ...) or pass another run folder."
        ) from None
    mismatch = _state_mismatch(name, config, model, state)
    if mismatch:
        raise CheckpointError(f"{checkpoint} does not fit its config.yaml: {mismatch}")
    model.load_state_dict(state)
    model.eval()
    return model


def _read_checkpoint(checkpoint: Path, device: str) -> dict[str, Any]:
    """``{"model_state": {name: tensor}}`` from ``checkpoint``, read without running any code."""
    import pickle

    try:
        payload = torch.load(checkpoint, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower():
            raise CheckpointError(
                f"{checkpoint}: the file carries code (pickled Python objects), not plain "
                "tensors; refused."
            ) from None
        raise CheckpointError(
            f"{checkpoint}: not a readable torch checkpoint (corrupt or truncated); restore it "
            "or retrain the run (osrl-unlearn train)."
        ) from None
    except Exception:  # torch raises RuntimeError, EOFError, OSError... on a damaged file
        raise CheckpointError(
            f"{checkpoint}: not a readable torch checkpoint (corrupt or truncated); restore it "
            "or retrain the run (osrl-unlearn train)."
        ) from None
    state = payload.get("model_state") if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(
            f"{checkpoint}: not an OSRL checkpoint (expected {{'model_state': state_dict}}); "
            "pass the checkpoint/model.pt of an OSRL run folder."
        )
    return payload


def _finite(value: torch.Tensor) -> bool:
    if not (value.is_floating_point() or value.is_complex()):
        return True
    return bool(torch.isfinite(value).all())


def _state_mismatch(
    name: str, config: dict[str, Any], model: torch.nn.Module, state: dict[str, torch.Tensor]
) -> str | None:
    """One line saying how ``state`` differs from ``model`` (agent type, observation/action
    widths, layer sizes), or None when it fits."""
    expected = model.state_dict()
    if set(state) != set(expected):
        for other in AGENT_KEYS:
            if other == name:
                continue
            try:
                keys = set(build_agent(other, config).state_dict())
            except Exception:  # noqa: BLE001 - only a guess at what the file holds
                continue
            if keys == set(state):
                return (
                    f"it holds a {other} agent but config.yaml says {name}; set `agent: {other}` "
                    "in config.yaml, or pass the run folder the checkpoint came from."
                )
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        detail = ", ".join(
            part
            for part in (
                f"{len(missing)} tensor(s) missing (first {missing[0]})" if missing else "",
                f"{len(extra)} unexpected (first {extra[0]})" if extra else "",
            )
            if part
        )
        return (
            f"its tensors are not those of a {name} agent ({detail}); pass the run folder the "
            "checkpoint came from."
        )
    differ = [key for key in expected if tuple(expected[key].shape) != tuple(state[key].shape)]
    if not differ:
        return None
    task = get_task(config["task"])
    key = differ[0]
    ours, theirs = tuple(expected[key].shape), tuple(state[key].shape)
    widths = {task.obs_dim, task.act_dim, task.obs_dim + task.act_dim}
    if len(ours) == 2 and ours[0] == theirs[0] and ours[1] in widths and theirs[1] != ours[1]:
        return (
            f"observation/action widths differ: {key} takes {theirs[1]} inputs in the checkpoint "
            f"but {ours[1]} for {task.name} (obs {task.obs_dim}, act {task.act_dim}); set "
            "config.yaml's task to the one it was trained on."
        )
    sizes = ", ".join(
        f"{k} {config[k]}"
        for k in ("a_hidden_sizes", "c_hidden_sizes", "vae_hidden_sizes")
        if k in config
    )
    return (
        f"layer sizes differ in {len(differ)} tensor(s): {key} is {list(theirs)} in the checkpoint "
        f"but {list(ours)} from config.yaml ({sizes}); set those keys to the sizes it was "
        "trained with."
    )


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
    from osrl_unlearn.io import atomic_dir

    run_dir = Path(run_dir)
    if run_dir.exists() and not replace:
        raise FileExistsError(
            f"{run_dir} exists; write the new run to another folder (or pass --force)."
        )
    # torch.save into memory, then a plain write: on a full disk torch's own writer fails with
    # an opaque "unexpected pos" error, a plain write with ENOSPC.
    weights = io.BytesIO()
    torch.save({"model_state": model.state_dict()}, weights)
    with atomic_dir(run_dir, overwrite=replace) as tmp:  # the old run goes once the new is whole
        (tmp / "checkpoint").mkdir()
        (tmp / "config.yaml").write_text(yaml.safe_dump(_plain(config), sort_keys=True))
        (tmp / "checkpoint" / "model.pt").write_bytes(weights.getvalue())
        if metadata is not None:
            (tmp / "unlearning.json").write_text(json.dumps(_plain(metadata), indent=1))
        for name, text in (files or {}).items():
            (tmp / name).write_text(text)
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
