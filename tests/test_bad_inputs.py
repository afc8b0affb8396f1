"""The bad-input corpus: every mistake a user can make on the command line ends with exit code 2
and one line that names the problem and a fix, leaves every input byte-identical and leaves
nothing behind (no output, no staging file, no empty folder).

Each case runs ``osrl-unlearn`` in this process on tiny files (a 1000-row CarCircle-shaped
dataset, an untrained BCQ-Lag run with [32, 32] layers), so the corpus takes seconds. The faults
that need real processes (a full disk, a read-only folder, kill -9) are in
``test_bad_inputs_faults.py``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from osrl_unlearn.agents.checkpoint import build_agent, save_run
from osrl_unlearn.cli import main
from osrl_unlearn.data import OfflineDataset, write_hdf5
from osrl_unlearn.errors import UserError
from tests.agents.conftest import TINY_CONFIG
from tests.conftest import CAR_CIRCLE, make_arrays

RUN_CONFIG = {**TINY_CONFIG, "agent": "bcql", "batch_size": 32}


def _raw_hdf5(path: Path, arrays: dict, attrs: dict | None = None) -> Path:
    """Written with h5py directly, so files our writer would refuse can be made."""
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            handle[key] = value
        for key, value in ({"task": CAR_CIRCLE} if attrs is None else attrs).items():
            handle.attrs[key] = value
    return path


def _mutated(path: Path, change, attrs: dict | None = None) -> Path:
    arrays = make_arrays()
    change(arrays)
    return _raw_hdf5(path, arrays, attrs)


def _set(key, value):
    return lambda arrays: arrays.__setitem__(key, value)


class _Code:
    """A pickle that runs code when loaded."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def build_world(root: Path) -> Path:
    """Tiny inputs, good and bad: datasets, run folders, config files."""
    root.mkdir(parents=True, exist_ok=True)
    attrs = {"task": CAR_CIRCLE}
    write_hdf5(root / "clean.hdf5", OfflineDataset.from_arrays(make_arrays(), attrs=attrs))
    poisoned = make_arrays()
    poisoned["poison_mask"] = np.arange(1000) >= 750
    write_hdf5(root / "poisoned.hdf5", OfflineDataset.from_arrays(poisoned, attrs=attrs))
    injected = make_arrays(episodes=2, seed=5)
    write_hdf5(root / "injected.hdf5", OfflineDataset.from_arrays(injected, attrs=attrs))

    n = 1000
    _mutated(root / "negative-costs.hdf5", lambda a: a["costs"].__setitem__(3, -1.0))
    _mutated(root / "actions-x50.hdf5", lambda a: a.__setitem__("actions", a["actions"] * 50))
    _mutated(root / "float-terminals.hdf5", _set("terminals", np.where(np.arange(n) % 7, 0, 0.3)))
    _mutated(root / "float-timeouts.hdf5", _set("timeouts", np.full(n, 0.5)))
    _mutated(root / "text-terminals.hdf5", _set("terminals", np.array([b"no"] * n)))
    _mutated(root / "no-task.hdf5", lambda a: None, attrs={})
    _mutated(root / "unknown-task.hdf5", lambda a: None, attrs={"task": "OfflineNope-v0"})
    _mutated(root / "no-costs.hdf5", lambda a: a.pop("costs"))
    _mutated(root / "short-rewards.hdf5", lambda a: a.__setitem__("rewards", a["rewards"][:-1]))
    _mutated(root / "nan-obs.hdf5", lambda a: a["observations"].__setitem__((5, 2), np.nan))
    _mutated(root / "wide-actions.hdf5", _set("actions", np.zeros((n, 3), np.float32)))
    _mutated(root / "flat-obs.hdf5", lambda a: a.__setitem__("observations", a["rewards"]))
    _mutated(root / "empty.hdf5", lambda a: a.update({k: v[:0] for k, v in a.items()}))
    _mutated(root / "mask-2.hdf5", _set("poison_mask", np.full(n, 2)))
    _mutated(root / "mask-none.hdf5", _set("poison_mask", np.zeros(n, bool)))
    _mutated(root / "mask-all.hdf5", _set("poison_mask", np.ones(n, bool)))
    with h5py.File(root / "group.hdf5", "w") as handle:
        for key, value in make_arrays().items():
            handle[key if key != "costs" else "costs/values"] = value
        handle.attrs["task"] = CAR_CIRCLE
    (root / "garbage.hdf5").write_bytes(b"this is not HDF5\n" * 10)
    (root / "empty-file.hdf5").write_bytes(b"")

    torch.manual_seed(0)
    run = save_run(build_agent("bcql", TINY_CONFIG), root / "run", RUN_CONFIG)

    def broken(name: str, change) -> None:
        folder = root / name
        shutil.copytree(run, folder)
        change(folder)

    def config(**changes):
        def write(folder: Path) -> None:
            values = {**RUN_CONFIG, **changes}
            values = {k: v for k, v in values.items() if v is not None}
            (folder / "config.yaml").write_text(yaml.safe_dump(values))

        return write

    def weights(state):
        return lambda folder: torch.save({"model_state": state}, folder / "checkpoint/model.pt")

    nan_state = build_agent("bcql", TINY_CONFIG).state_dict()
    nan_state["actor.pi.0.weight"][0, 0] = float("nan")
    inf_state = build_agent("bcql", TINY_CONFIG).state_dict()
    inf_state["cost_critic.q1_nets.0.0.weight"][0, 0] = float("inf")
    small = {**TINY_CONFIG, "a_hidden_sizes": [16, 16], "c_hidden_sizes": [16, 16]}
    broken("run-bad-yaml", lambda f: (f / "config.yaml").write_text("task: [oops\n  a: b\n"))
    broken("run-yaml-list", lambda f: (f / "config.yaml").write_text("- 1\n- 2\n"))
    broken("run-no-agent", config(agent=None))
    broken("run-no-task", config(task=None))
    broken("run-task-number", config(task=7))
    broken("run-unknown-task", config(task="OfflineNope-v0"))
    broken("run-other-task", config(task="OfflinePointCircle1Gymnasium-v0"))
    broken("run-text-sizes", config(a_hidden_sizes="big"))
    broken("run-nan", weights(nan_state))
    broken("run-inf", weights(inf_state))
    broken("run-pickle", lambda f: torch.save({"model_state": _Code()}, f / "checkpoint/model.pt"))
    broken("run-other-agent", weights(build_agent("cpq", TINY_CONFIG).state_dict()))
    broken("run-other-sizes", weights(build_agent("bcql", small).state_dict()))
    fresh = build_agent("bcql", TINY_CONFIG).state_dict()
    broken(
        "run-missing-tensor", weights({k: v for k, v in fresh.items() if k != "actor.pi.0.weight"})
    )
    broken("run-corrupt", lambda f: (f / "checkpoint/model.pt").write_bytes(b"PK\x03\x04junk"))
    broken("run-truncated", _truncate)
    broken("run-not-osrl", lambda f: torch.save({"weights": 1}, f / "checkpoint/model.pt"))
    broken("run-no-checkpoint", lambda f: (f / "checkpoint/model.pt").unlink())
    broken("run-plain-pickle", lambda f: (f / "checkpoint/model.pt").write_bytes(
        pickle.dumps({"model_state": _Code()})))  # fmt: skip

    (root / "exists.json").write_text("{}")
    (root / "taken").mkdir()
    (root / "taken" / "keep.txt").write_text("precious")
    (root / "bad.yaml").write_text("steps: [1, 2\nmethod: x\n")
    (root / "list.yaml").write_text("- steps\n- 5\n")
    (root / "unknown.yaml").write_text("stepz: 5\n")
    (root / "maybe.yaml").write_text("force: maybe\n")
    (root / "nested-bad.yaml").write_text("unlearning:\n  beta_rate: fast\n")
    (root / "nested-range.yaml").write_text("unlearning:\n  q_ref_percentile: 150\n")
    return root


def _truncate(folder: Path) -> None:
    path = folder / "checkpoint" / "model.pt"
    path.write_bytes(path.read_bytes()[:200])


def tree(root: Path) -> dict[str, str]:
    """Every file (by content hash) and folder under ``root``: equal trees, nothing changed."""
    listing = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            listing[os.path.relpath(Path(folder, name), root)] = "<dir>"
        for name in files:
            path = Path(folder, name)
            listing[os.path.relpath(path, root)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return listing


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"))


Q = ["--show_progress", "false"]
TRAIN = ["train", "--dataset", "{w}/clean.hdf5", "--out", "{w}/out", "--eval_episodes", "0", *Q]
UNLEARN = ["unlearn", "--run", "{w}/run", "--dataset", "{w}/poisoned.hdf5", "--out", "{w}/out/r",
           "--eval_episodes", "0", *Q]  # fmt: skip
EVALUATE = ["evaluate", "--run", "{w}/run", "--episodes", "1", *Q]
POISON = ["poison", "--dataset", "{w}/clean.hdf5", "--inject_from", "{w}/injected.hdf5",
          "--out", "{w}/out/p.hdf5", *Q]  # fmt: skip
REPORT = ["report", "--runs", "[{w}/run]", "--episodes", "1", "--out", "{w}/out/report", *Q]


def train_on(name: str, *extra: str) -> list[str]:
    return [*TRAIN, "--dataset", f"{{w}}/{name}", *extra]


def evaluate_run(name: str) -> list[str]:
    return [*EVALUATE, "--run", f"{{w}}/{name}"]


CASES = [
    # --- flags: types, booleans, ranges, unknown names (parsing included) ---
    ("train-agent-foo", [*TRAIN, "--agent", "foo"], ["unknown --agent 'foo'", "bcql"]),
    ("train-steps-negative", [*TRAIN, "--steps", "-5"], ["--steps", "positive", "-5"]),
    ("train-steps-zero", [*TRAIN, "--steps", "0"], ["--steps", "positive"]),
    ("train-steps-float", [*TRAIN, "--steps", "5.5"], ["--steps takes an integer", "5.5"]),
    ("train-steps-text", [*TRAIN, "--steps", "many"], ["--steps takes an integer", "many"]),
    ("train-steps-no-value", [*TRAIN, "--steps"], ["--steps", "expected one argument", "--help"]),
    ("train-batch-zero", [*TRAIN, "--batch_size", "0"], ["--batch_size", "positive"]),
    ("train-hidden-empty", [*TRAIN, "--hidden", "[]"], ["--hidden", "positive layer sizes"]),
    ("train-hidden-zero", [*TRAIN, "--hidden", "[64, 0]"], ["--hidden", "positive layer sizes"]),
    ("train-hidden-text", [*TRAIN, "--hidden", "[a, b]"], ["--hidden takes", "list of"]),
    ("train-hidden-unclosed", [*TRAIN, "--hidden", "[64, 64"], ["--hidden", "cannot read"]),
    ("train-cost-limit-negative", [*TRAIN, "--cost_limit", "-5"], ["--cost_limit", ">= 0"]),
    ("train-cost-limit-nan", [*TRAIN, "--cost_limit", "nan"], ["--cost_limit", "finite"]),
    ("train-lr-zero", [*TRAIN, "--learning_rate", "0"], ["--learning_rate", "> 0"]),
    ("train-trainer-typo", [*TRAIN, "--trainer", "osr"], ["unknown --trainer 'osr'", "fast"]),
    ("train-seed-negative", [*TRAIN, "--seed", "-1"], ["--seed", "2**32"]),
    ("train-profile-gpu", [*TRAIN, "--profile", "gpu"], ["unknown --profile 'gpu'", "quick"]),
    ("train-force-typo", [*TRAIN, "--force", "flase"], ["--force", "true or false", "flase"]),
    ("train-force-maybe", [*TRAIN, "--force", "maybe"], ["--force", "true or false", "maybe"]),
    ("train-keep-only-2", [*TRAIN, "--keep_only", "2"], ["--keep_only", "true or false"]),
    ("train-eval-episodes-negative", [*TRAIN, "--eval_episodes", "-1"], ["--eval_episodes"]),
    ("train-name-path", [*TRAIN, "--name", "../escape"], ["--name", "not a folder name"]),
    ("train-unknown-flag", [*TRAIN, "--stepz", "3"], ["unknown option --stepz", "--steps"]),
    ("train-no-dataset", ["train", "--agent", "bcql"], ["no dataset", "--dataset"]),
    ("train-stray-word", [*TRAIN, "extra"], ["unrecognized arguments", "--help"]),
    ("evaluate-episodes-zero", [*EVALUATE, "--episodes", "0"], ["--episodes", "positive"]),
    ("evaluate-backend-foo", [*EVALUATE, "--backend", "foo"], ["--backend 'foo'", "sync"]),
    ("evaluate-num-envs-zero", [*EVALUATE, "--num_envs", "0"], ["--num_envs", "positive"]),
    ("evaluate-cost-limit-negative", [*EVALUATE, "--cost_limit", "-1"], ["--cost_limit"]),
    ("evaluate-progress-perhaps", [*EVALUATE, "--show_progress", "perhaps"], ["true or false"]),
    ("evaluate-no-run", ["evaluate"], ["--run DIR"]),
    ("evaluate-out-exists", [*EVALUATE, "--out", "{w}/exists.json"], ["exists", "--force"]),
    ("evaluate-out-folder", [*EVALUATE, "--out", "{w}/taken"], ["is a folder", "--out"]),
    ("poison-ratio-text", [*POISON, "--ratio", "abc"], ["--ratio takes a finite number", "abc"]),
    ("poison-ratio-above-1", [*POISON, "--ratio", "1.5"], ["ratio must lie", "1.5"]),
    ("poison-ratio-zero", [*POISON, "--ratio", "0"], ["ratio must lie"]),
    ("poison-attack-foo", [*POISON, "--attack", "foo"], ["unknown attack 'foo'", "max-cost"]),
    ("poison-out-is-dataset", [*POISON, "--out", "{w}/clean.hdf5"], ["never overwritten"]),
    (
        "poison-out-is-dataset-forced",
        [*POISON, "--out", "{w}/clean.hdf5", "--force", "true"],
        ["never overwritten"],
    ),  # fmt: skip
    ("poison-out-is-injected", [*POISON, "--out", "{w}/injected.hdf5"], ["never overwritten"]),
    ("poison-out-exists", [*POISON, "--out", "{w}/exists.json"], ["exists", "--force"]),
    ("poison-out-folder", [*POISON, "--out", "{w}/taken"], ["is a folder"]),
    ("poison-workers-zero", [*POISON, "--workers", "0"], ["--workers", "1 or more"]),
    ("poison-gamma-2", [*POISON, "--gamma", "2"], ["--gamma", "(0, 1]"]),
    ("poison-percentile-101", [*POISON, "--high_reward_percentile", "101"], ["[0, 100]"]),
    ("poison-no-out", ["poison", "--dataset", "{w}/clean.hdf5"], ["--out"]),
    ("poison-already-poisoned", [*POISON, "--dataset", "{w}/poisoned.hdf5"], ["already poisoned"]),
    (
        "poison-wrong-task",
        [*POISON, "--task", "OfflinePointCircle1Gymnasium-v0"],
        ["made for OfflineCarCircle-v0"],
    ),  # fmt: skip
    (
        "unlearn-steps-in-settings-zero",
        [*UNLEARN, "--unlearning.steps", "0"],
        ["--unlearning.steps must be positive"],
    ),  # fmt: skip
    (
        "unlearn-beta-min-zero",
        [*UNLEARN, "--unlearning.beta_min", "0"],
        ["--unlearning", "beta_min"],
    ),  # fmt: skip
    (
        "unlearn-q-ref-150",
        [*UNLEARN, "--unlearning.q_ref_percentile", "150"],
        ["--unlearning.q_ref_percentile", "[0, 100]"],
    ),  # fmt: skip
    (
        "unlearn-keep-objective-foo",
        [*UNLEARN, "--unlearning.keep_objective", "foo"],
        ["--unlearning.keep_objective", "published"],
    ),  # fmt: skip
    (
        "unlearn-adaptive-beta-typo",
        [*UNLEARN, "--unlearning.adaptive_beta", "ture"],
        ["--unlearning.adaptive_beta", "true or false"],
    ),  # fmt: skip
    ("unlearn-method-foo", [*UNLEARN, "--method", "foo"], ["unknown --method 'foo'", "safe-rule"]),
    ("unlearn-batch-zero", [*UNLEARN, "--batch_size", "0"], ["--batch_size", "positive"]),
    ("unlearn-steps-zero", [*UNLEARN, "--steps", "0"], ["--steps", "positive"]),
    ("unlearn-config-missing", [*UNLEARN, "--config_path", "{w}/nope.yaml"], ["no such file"]),
    (
        "unlearn-config-bad-yaml",
        [*UNLEARN, "--config_path", "{w}/bad.yaml"],
        ["bad.yaml", "not valid YAML", "line"],
    ),  # fmt: skip
    ("unlearn-config-list", [*UNLEARN, "--config_path", "{w}/list.yaml"], ["name: value"]),
    (
        "unlearn-config-unknown",
        [*UNLEARN, "--config_path", "{w}/unknown.yaml"],
        ["unknown option 'stepz'", "--help"],
    ),  # fmt: skip
    (
        "unlearn-config-maybe",
        [*UNLEARN, "--config_path", "{w}/maybe.yaml"],
        ["force takes true or false", "maybe"],
    ),  # fmt: skip
    (
        "unlearn-config-nested-text",
        [*UNLEARN, "--config_path", "{w}/nested-bad.yaml"],
        ["unlearning.beta_rate takes a finite number", "fast"],
    ),  # fmt: skip
    (
        "unlearn-config-nested-range",
        [*UNLEARN, "--config_path", "{w}/nested-range.yaml"],
        ["q_ref_percentile", "[0, 100]"],
    ),  # fmt: skip
    ("unlearn-out-is-run", [*UNLEARN, "--out", "{w}/run"], ["--out is --run", "never"]),
    (
        "unlearn-out-is-run-forced",
        [*UNLEARN, "--out", "{w}/run", "--force", "yes"],
        ["--out is --run"],
    ),  # fmt: skip
    ("unlearn-out-exists", [*UNLEARN, "--out", "{w}/taken"], ["taken exists", "--force"]),
    ("unlearn-no-dataset", ["unlearn", "--run", "{w}/run"], ["--run DIR --dataset FILE"]),
    ("unlearn-clean-data", [*UNLEARN, "--dataset", "{w}/clean.hdf5"], ["no poison_mask"]),
    ("unlearn-mask-none", [*UNLEARN, "--dataset", "{w}/mask-none.hdf5"], ["forget set is empty"]),
    ("unlearn-mask-all", [*UNLEARN, "--dataset", "{w}/mask-all.hdf5"], ["keep set is empty"]),
    ("unlearn-nan-run", [*UNLEARN, "--run", "{w}/run-nan"], ["NaN or infinite", "retrain"]),
    ("report-no-runs", ["report"], ["--runs"]),
    ("report-labels-mismatch", [*REPORT, "--labels", "[a,b]"], ["2 labels for 1 runs"]),
    ("report-episodes-zero", [*REPORT, "--episodes", "0"], ["--episodes", "positive"]),
    ("report-broken-run", [*REPORT, "--runs", "[{w}/run,{w}/run-pickle]"], ["carries code"]),
    ("report-out-file", [*REPORT, "--out", "{w}/exists.json"], ["is a file"]),
    ("make-dataset-episodes-negative", ["make-dataset", "--episodes", "-3", *Q], ["episodes"]),
    ("make-dataset-workers-zero", ["make-dataset", "--workers", "0", *Q], ["--workers"]),
    (
        "make-dataset-out-exists",
        ["make-dataset", "--out", "{w}/exists.json", *Q],
        ["exists", "--force"],
    ),  # fmt: skip
    ("unknown-command", ["frobnicate"], ["unknown command 'frobnicate'", "--help"]),
    # --- data files ---
    ("data-negative-costs", train_on("negative-costs.hdf5"), ["negative", "costs", "row 3"]),
    ("data-actions-x50", train_on("actions-x50.hdf5"), ["outside", "action space", "clip"]),
    ("data-float-terminals", train_on("float-terminals.hdf5"), ["terminals", "0/1", "0.3"]),
    ("data-float-timeouts", train_on("float-timeouts.hdf5"), ["timeouts", "0/1", "0.5"]),
    ("data-text-terminals", train_on("text-terminals.hdf5"), ["terminals", "0/1"]),
    ("data-no-task", train_on("no-task.hdf5"), ["no 'task' attribute", "--task"]),
    ("data-unknown-task", train_on("unknown-task.hdf5"), ["unknown task 'OfflineNope-v0'"]),
    ("data-no-costs", train_on("no-costs.hdf5"), ["missing DSRL key", "costs"]),
    ("data-short-rewards", train_on("short-rewards.hdf5"), ["rewards has 999 rows"]),
    ("data-nan-observations", train_on("nan-obs.hdf5"), ["NaN", "row 5"]),
    ("data-wide-actions", train_on("wide-actions.hdf5"), ["actions have 3 features", "has 2"]),
    ("data-flat-observations", train_on("flat-obs.hdf5"), ["observations has shape"]),
    ("data-empty", train_on("empty.hdf5"), ["empty"]),
    ("data-mask-2", [*UNLEARN, "--dataset", "{w}/mask-2.hdf5"], ["poison_mask", "0/1"]),
    ("data-group", train_on("group.hdf5"), ["HDF5 group"]),
    ("data-garbage", train_on("garbage.hdf5"), ["not a readable HDF5 file"]),
    ("data-empty-file", train_on("empty-file.hdf5"), ["not a readable HDF5 file"]),
    ("data-missing-file", train_on("nope.hdf5"), ["no such file", "make-dataset"]),
    (
        "data-other-task",
        train_on("clean.hdf5", "--task", "OfflinePointCircle1Gymnasium-v0"),
        ["made for OfflineCarCircle-v0"],
    ),  # fmt: skip
    ("data-keep-only-clean", train_on("clean.hdf5", "--keep_only", "true"), ["no poison_mask"]),
    # --- run folders and checkpoints ---
    ("run-bad-yaml", evaluate_run("run-bad-yaml"), ["not valid YAML", "line 2"]),
    ("run-yaml-list", evaluate_run("run-yaml-list"), ["not an OSRL training config"]),
    ("run-no-agent", evaluate_run("run-no-agent"), ["agent: bcql", "config.yaml"]),
    ("run-no-task", evaluate_run("run-no-task"), ["no 'task' key"]),
    ("run-task-number", evaluate_run("run-task-number"), ["'task' is 7"]),
    ("run-unknown-task", evaluate_run("run-unknown-task"), ["unknown task 'OfflineNope-v0'"]),
    ("run-other-task", evaluate_run("run-other-task"), ["observation/action widths", "28"]),
    ("run-text-sizes", evaluate_run("run-text-sizes"), ["cannot build a bcql agent"]),
    ("run-nan-weights", evaluate_run("run-nan"), ["NaN or infinite", "actor.pi.0.weight"]),
    ("run-inf-weights", evaluate_run("run-inf"), ["NaN or infinite"]),
    ("run-pickle-code", evaluate_run("run-pickle"), ["carries code", "refused"]),
    ("run-plain-pickle", evaluate_run("run-plain-pickle"), ["carries code", "refused"]),
    ("run-other-agent", evaluate_run("run-other-agent"), ["holds a cpq agent", "says bcql"]),
    ("run-other-sizes", evaluate_run("run-other-sizes"), ["layer sizes differ", "[16, 10]"]),
    ("run-missing-tensor", evaluate_run("run-missing-tensor"), ["missing", "actor.pi.0.weight"]),
    ("run-corrupt", evaluate_run("run-corrupt"), ["not a readable torch checkpoint"]),
    ("run-truncated", evaluate_run("run-truncated"), ["not a readable torch checkpoint"]),
    ("run-not-osrl", evaluate_run("run-not-osrl"), ["model_state"]),
    ("run-no-checkpoint", evaluate_run("run-no-checkpoint"), ["no checkpoint/model.pt"]),
    ("run-missing", evaluate_run("nowhere"), ["no config.yaml"]),
]


@pytest.mark.parametrize(("args", "keywords"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(args, keywords, world, capsys):
    before = tree(world)
    assert main([a.replace("{w}", str(world)) for a in args]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for word in keywords:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    assert tree(world) == before  # inputs byte-identical, no output, no staging, no empty folder


def test_corpus_has_sixty_cases_or_more():
    assert len(CASES) + len(API_CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


def _other_task_agent():
    return build_agent("bcql", {**TINY_CONFIG, "task": "OfflinePointCircle1Gymnasium-v0"})


API_CASES = [
    (
        "evaluate-other-width",
        lambda: _evaluate(task="OfflinePointCircle1Gymnasium-v0"),
        ["8-dim observations", "has 28"],
    ),  # fmt: skip
    (
        "evaluate-other-width-agent",
        lambda: _evaluate(agent=_other_task_agent()),
        ["28-dim observations", "has 8"],
    ),  # fmt: skip
    ("evaluate-episodes-zero", lambda: _evaluate(episodes=0), ["episodes must be positive"]),
    ("evaluate-num-envs-zero", lambda: _evaluate(num_envs=0), ["num_envs must be positive"]),
    ("evaluate-backend", lambda: _evaluate(backend="threads"), ["'sync' or 'async'"]),
    ("evaluate-cost-limit", lambda: _evaluate(cost_limit=-1.0), ["cost_limit", ">= 0"]),
    ("dataset-actions-x50", lambda: _from_arrays(actions=50.0), ["outside", "action space"]),
    ("dataset-float-terminals", lambda: _from_arrays(terminals=0.3), ["terminals", "0/1"]),
    ("dataset-negative-costs", lambda: _from_arrays(costs=-1.0), ["negative"]),
]


def _evaluate(agent=None, task=CAR_CIRCLE, **kwargs):
    from osrl_unlearn.evaluation import evaluate

    agent = agent if agent is not None else build_agent("bcql", TINY_CONFIG)
    return evaluate(agent, task, **{"episodes": 1, "show_progress": False, **kwargs})


def _from_arrays(**scale):
    from osrl_unlearn.tasks import get_task

    arrays = make_arrays()
    for key, factor in scale.items():
        arrays[key] = np.where(np.arange(len(arrays[key])).reshape(-1, *[1] * (arrays[key].ndim - 1)) % 3 == 0, factor, arrays[key])  # fmt: skip
    return OfflineDataset.from_arrays(arrays, task=get_task(CAR_CIRCLE))


@pytest.mark.parametrize(
    ("call", "keywords"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES]
)
def test_bad_input_through_the_python_api_is_a_user_error(call, keywords):
    with pytest.raises(UserError) as caught:
        call()
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    for word in keywords:
        assert word.lower() in message.lower(), (word, message)


def test_trajdeleter_keeps_the_settings_a_user_gives_even_at_generic_defaults():
    from osrl_unlearn.cli import UnlearnConfig, parse_options, user_settings

    args = ["--method", "trajdeleter-adv", "--unlearning.beta_init", "0.1",
            "--unlearning.adaptive_beta", "true"]  # fmt: skip
    cfg, given = parse_options("unlearn", UnlearnConfig, args)
    explicit = frozenset(k.split(".", 1)[1] for k in given if k.startswith("unlearning."))
    settings = user_settings(cfg.method, cfg.unlearning, explicit)
    assert settings.beta_init == 0.1 and settings.adaptive_beta is True
    assert settings.critic_unlearning is False  # TrajDeleter's own, not set by the user
    assert user_settings("trajdeleter-adv", cfg.unlearning, frozenset()).beta_init == 1.0


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("true", True),
        ("False", False),
        ("yes", True),
        ("no", False),
        ("1", True),
        ("0", False),
    ],  # fmt: skip
)
def test_booleans_take_exactly_six_words(word, value):
    from osrl_unlearn.cli import TrainConfig, parse_options

    cfg, _ = parse_options("train", TrainConfig, ["--force", word])
    assert cfg.force is value


def test_text_options_stay_as_typed():
    from osrl_unlearn.cli import TrainConfig, parse_options

    cfg, _ = parse_options("train", TrainConfig, ["--name", "007", "--out", "no"])
    assert cfg.name == "007" and cfg.out == "no"


def test_failed_train_leaves_no_empty_output_folder(world, monkeypatch, capsys):
    """Training fails after the staging folder was made: neither it nor --out's new parents stay."""
    import osrl_unlearn.training

    def fail(data, settings, parent, name, show_progress):
        (Path(parent) / name).mkdir()
        (Path(parent) / name / "half.pt").write_bytes(b"partial")
        raise UserError("training diverged (simulated); lower --learning_rate.")

    monkeypatch.setattr(osrl_unlearn.training, "train_agent", fail)
    before = tree(world)
    args = [a.replace("{w}", str(world)) for a in TRAIN]
    assert main([*args, "--out", f"{world}/new/deeper"]) == 2
    assert "training diverged" in capsys.readouterr().err
    assert tree(world) == before
