"""One grid cell at OSRL's default sizes and budget (100k steps) on a GPU: issue 12, point 5.

Three stages on two machines:

    # here: the cell's batch fields, configs and relabel labels -> .device/cell (+ .device/site)
    python benchmarks/device_cell.py --stage prepare --clean <dataset.hdf5> \\
        --poisoned "[<seed0.hdf5>, <seed1.hdf5>, <seed2.hdf5>]"
    # on the GPU machine: clean and poisoned agents of every seed trained side by side (one CUDA
    # graph and stream each), then the default repair (``relabel``) of each poisoned agent
    PYTHONPATH=.device/site:. python benchmarks/device_cell.py --stage train --out $OUT
    # here: 50 seeded episodes per policy -> <results_dir>/*.json and <results_dir>.md
    python benchmarks/device_cell.py --stage evaluate --trained "[<folder the device wrote>, ...]"

The training stage needs torch, OSRL and pyrallis only (``prepare`` copies OSRL and pyrallis into
``.device/site`` with two stand-ins: ``fsrl.utils``' loggers, which OSRL's algorithm modules import
and this stage does not use, and ``gymnasium``, which they name in annotations). Everything the
agents are trained on is made here by the library (fields at the training scales, the poison
mask, relabel's labels and batch share), so the device only draws batches from it. Training uses
the agent's OSRL default config (``osrl`` profile; BCQ-Lag, BEAR-Lag or CPQ); the repair is
``relabel`` at its defaults (2,000 steps) and at a longer budget, optionally beside variants
(``--repair_variants``).

The device returns at most 8 files of 16 MiB: ``states-seed<s>.pt`` (the whole clean and
poisoned agents of a seed, ~13 MB at OSRL's sizes: later repairs and removal checks can start
from them on a CPU), ``policies-repaired-<steps>.pt`` (actor and VAE of every repair at that
budget) and ``log.json`` (checks, speeds, each run's losses). The first run (2026-11-30,
``benchmarks/results/device-osrl``) kept policies only (``policies-trained.pt``); ``evaluate``
reads both layouts.
"""

import copy
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List

import numpy as np
import torch

from osrl_unlearn.errors import ConfigError
from osrl_unlearn.fast.cuda_graphs import CAPTURABLE
from osrl_unlearn.trainers import osrl_trainer

POLICY_PARTS = ("actor.", "vae.")
"""What a policy acts with (BCQ-Lag's actor perturbs the VAE's decoded actions)."""
REPAIR_VARIANTS = {
    "relabel": "relabel's defaults: the actor reset, keep + relabelled forget rows",
    "relabel+keep-constraint": "the PID multiplier set by the keep rows' Q_c (constraint_rows='keep')",
    "relabel+shrink-perturb": "the actor shrunk and perturbed (0.4, 0.1) instead of reset",
    "relabel+actor-keep": "the poisoned actor kept (no reset)",
    "finetune": "the agent's own step on keep rows only, from the poisoned agent",
}
"""The repairs the train stage runs side by side (each our training step on other batches or from
another start: what a CUDA graph captures)."""


@dataclass
class DeviceCellConfig:
    """Settings of the device cell."""

    stage: str = "prepare"
    """prepare (here), train (on the GPU machine) or evaluate (here)."""
    cell: str = ".device/cell"
    """Folder of the prepared cell (travels to the device machine)."""
    clean: str = ""
    """prepare: the clean DSRL file the grid made."""
    poisoned: List[str] = field(default_factory=list)
    """prepare: one poisoned file per seed (the grid's poisoned-<attack>-<ratio>-seed<s> files)."""
    attack: str = "max-cost"
    ratio: float = 0.15
    agent: str = "bcql"
    profile: str = "osrl"
    """Training profile (osrl_unlearn.training.PROFILES): OSRL's default sizes."""
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    steps: int = 100_000
    """Training steps per agent (OSRL's default for BCQ-Lag and CPQ; BEAR-Lag's is 300k)."""
    repair_steps: List[int] = field(default_factory=lambda: [2000, 20_000])
    """Repair budgets, policies saved at each: relabel's default and a fifth of training."""
    repair_variants: List[str] = field(default_factory=lambda: ["relabel"])
    """Repairs run side by side (REPAIR_VARIANTS)."""
    train_clean: bool = True
    """train: train the clean agents too (False: their results from an earlier call stand, e.g.
    when another attack's cell of the same clean file is run)."""
    device: str = "cuda"
    out: str = "device-out"
    """train: where the policies and the log go."""
    time_budget: float = 330.0
    """train: seconds the training may take; seeds are dropped from the end (at least one kept)
    when the measured speed says they would not fit."""
    deadline: float = 420.0
    """train: seconds after which training stops at its next quarter mark (fewer steps,
    recorded) so that the repairs still run within the machine's time."""
    chunk: int = 20
    """train: replays queued on one run's stream before the next run's."""
    speed_steps: int = 50
    """train: steps timed per step kind (OSRL's, ours eager, ours as a graph: x4)."""
    trained: List[str] = field(default_factory=list)
    """evaluate: the folders the train stage wrote (one per device call: seeds may be split)."""
    results_dir: str = "benchmarks/results/device-osrl"
    episodes: int = 50


def prepare(cfg: DeviceCellConfig) -> None:
    from osrl_unlearn.agents.checkpoint import agent_arguments, build_agent
    from osrl_unlearn.benchmark.grid import keep_is_clean
    from osrl_unlearn.benchmark.provenance import file_hash
    from osrl_unlearn.data import BatchSampler, layout_for, read_hdf5, unlearning_samplers
    from osrl_unlearn.osrl_configs import trainer_learning_rates
    from osrl_unlearn.training import profile_settings, training_config
    from osrl_unlearn.unlearn.config import RelabelConfig
    from osrl_unlearn.unlearn.relabel import COST, REWARD, forget_rows, labels

    if cfg.agent not in CAPTURABLE:
        raise ConfigError(f"the device cell trains {', '.join(CAPTURABLE)} (their steps are "
                          f"captured as CUDA graphs), not {cfg.agent}")  # fmt: skip
    if len(cfg.poisoned) != len(cfg.seeds):
        raise ConfigError(f"--poisoned names {len(cfg.poisoned)} files for {len(cfg.seeds)} "
                          "seeds; give one poisoned file per seed, in the seeds' order")  # fmt: skip
    cell = Path(cfg.cell)
    cell.mkdir(parents=True, exist_ok=True)
    clean = read_hdf5(cfg.clean)
    meta = {"agent": cfg.agent, "task": clean.task, "attack": cfg.attack, "ratio": cfg.ratio,
            "clean_file": cfg.clean, "clean_hash": file_hash(clean), "seeds": {}}  # fmt: skip
    relabel = RelabelConfig()
    for seed, path in zip(cfg.seeds, cfg.poisoned, strict=True):
        config = training_config(clean, profile_settings(cfg.profile, agent=cfg.agent, seed=seed))
        scales = {"reward_scale": config["reward_scale"], "cost_scale": config["cost_scale"]}
        common = dict(layout=layout_for(cfg.agent), **scales)
        if seed == cfg.seeds[0]:
            fields = BatchSampler(clean, config["batch_size"], **common).fields
            np.savez_compressed(cell / "clean.npz", *[f.numpy() for f in fields])
        poisoned = read_hdf5(path)
        fields = BatchSampler(poisoned, config["batch_size"], **common).fields
        mask = poisoned.poison_mask.astype(bool)
        np.savez_compressed(cell / f"poisoned-seed{seed}.npz", *[f.numpy() for f in fields],
                            mask=mask)  # fmt: skip
        torch.manual_seed(seed)  # as training builds the agent
        model = build_agent(cfg.agent, config)
        keep, forget = unlearning_samplers(poisoned, model, config["batch_size"], seed)
        assert torch.equal(keep.fields[0], fields[0][torch.from_numpy(~mask)])
        reward, cost = labels(relabel, keep.fields[REWARD], keep.fields[COST],
                              config["cost_scale"], config["cost_limit"])  # fmt: skip
        meta["seeds"][str(seed)] = {
            "config": config, "arguments": agent_arguments(cfg.agent, config),
            "learning_rates": trainer_learning_rates(cfg.agent, config),
            "initial_checksum": checksum(model), "poisoned_file": path,
            "poisoned_hash": file_hash(poisoned), "keep_is_clean": keep_is_clean(clean, poisoned),
            "relabel": {"reward": reward, "cost": cost, "config": asdict(relabel),
                        "forget_rows": forget_rows(relabel, config["batch_size"], keep, forget)},
        }  # fmt: skip
    (cell / "cell.json").write_text(json.dumps(meta, indent=1, default=float))
    make_site(cell.parent / "site")
    size = sum(p.stat().st_size for p in cell.parent.rglob("*") if p.is_file())
    print(f"prepared {cell} ({size / 2**20:.1f} MiB with the site packages)")


def checksum(model: torch.nn.Module) -> float:
    """Sum of |weights|: the device checks it built the same initial agent."""
    return float(sum(p.detach().double().abs().sum() for p in model.state_dict().values()))


STAND_INS = {
    "fsrl/__init__.py": "",
    "fsrl/utils/__init__.py": (
        '"""Stand-in for fsrl.utils on the device machine: the names OSRL imports."""\n\n\n'
        "class DummyLogger:\n    def store(self, **kwargs):\n        pass\n\n\n"
        "WandbLogger = DummyLogger\n"
    ),
    "gymnasium/__init__.py": '"""Stand-in: OSRL names gymnasium.Env in annotations."""\nEnv = object\n',
}


def make_site(site: Path) -> None:
    """The packages the train stage needs that the GPU machine lacks."""
    import osrl
    import pyrallis

    if site.exists():
        shutil.rmtree(site)
    for package in (osrl, pyrallis):
        source = Path(package.__file__).parent
        shutil.copytree(source, site / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in STAND_INS.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)


# ---- the device stage ------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_fields(path: Path, device) -> tuple[tuple[torch.Tensor, ...], np.ndarray | None]:
    with np.load(path) as arrays:
        fields = tuple(torch.from_numpy(arrays[f"arr_{i}"]).to(device) for i in range(6))
        mask = arrays["mask"] if "mask" in arrays.files else None
    return fields, mask


def new_agent(agent: str, arguments: dict, seed: int, device) -> torch.nn.Module:
    """OSRL's own class of ``agent`` (our subclasses need the whole stack, absent there)."""
    from osrl_unlearn.stack import import_osrl_algorithms
    from osrl_unlearn.trainers import OSRL_PREFIX

    cls = getattr(import_osrl_algorithms(), OSRL_PREFIX[agent])
    torch.manual_seed(seed)  # as training builds the agent (its layers made on the CPU, then moved)
    return cls(device=str(device), **arguments).to(device)


def policy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
            if k.startswith(POLICY_PARTS)}  # fmt: skip


def run_all(runs: dict, steps: int, chunk: int, every: int, history: dict) -> None:
    """Advances every run to ``steps`` steps, interleaved in chunks; logs each run's values
    every ``every`` steps."""
    next_log = {name: every for name in runs}
    while any(run.steps_done < steps for run in runs.values()):
        for run in runs.values():
            if run.steps_done < steps:
                run.advance(min(chunk, steps - run.steps_done))
        for name, run in runs.items():
            if run.steps_done >= next_log[name]:
                values = run.values()
                history.setdefault(name, []).append({"step": run.steps_done, **values})
                next_log[name] += every
    for run in runs.values():
        run.synchronize()


def synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(function, steps: int, device) -> float:
    """Milliseconds per call of ``function`` over ``steps`` calls (after 3 warm-up calls)."""
    for _ in range(3):
        function()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        function()
    synchronize(device)
    return (time.perf_counter() - start) / steps * 1000


def step_speeds(meta: dict, seed: str, fields, device, steps: int) -> dict[str, float]:
    """ms per training step at OSRL's sizes on this GPU: OSRL's own ``train_one_step``, ours
    eager, ours replayed as a graph (one run alone)."""
    from osrl_unlearn.fast.cuda_graphs import GraphedTraining, Source

    info = meta["seeds"][seed]
    rates = info["learning_rates"]
    batch_size = info["config"]["batch_size"]
    generator = torch.Generator(device=device).manual_seed(0)

    def batch():
        index = torch.randint(len(fields[0]), (batch_size,), device=device, generator=generator)
        return [f.index_select(0, index) for f in fields]

    model = new_agent(meta["agent"], info["arguments"], 0, device)
    osrl = osrl_trainer(meta["agent"], copy.deepcopy(model), **rates)
    graphed = GraphedTraining(meta["agent"], copy.deepcopy(model), [Source(fields, batch_size)],
                              seed=0, **rates)  # fmt: skip
    eager = GraphedTraining(meta["agent"], copy.deepcopy(model), [Source(fields, batch_size)],
                            seed=0, **rates)  # fmt: skip
    speeds = {"osrl_train_one_step_ms": time_steps(lambda: osrl.train_one_step(*batch()), steps, device),
              "ours_eager_ms": time_steps(eager._eager_step, steps, device)}  # fmt: skip
    graphed.advance(3)
    speeds["ours_graph_ms"] = time_steps(lambda: graphed.advance(1), 4 * steps, device)
    return speeds


def osrl_matches_ours(meta: dict, seed: str, fields, device, steps: int = 10) -> float:
    """Largest parameter difference between OSRL's ``train_one_step`` and our eager step on this
    device, from the same weights, batches and global seed (the tests' check, on the GPU). On a
    GPU only BCQ-Lag's draws are the same in both (BEAR-Lag's and CPQ's actor samples come from
    the GPU's generator in OSRL, from the CPU's in ours), so only its figure measures rounding."""
    from osrl_unlearn.fast import FastTrainer

    info = meta["seeds"][seed]
    model = new_agent(meta["agent"], info["arguments"], int(seed), device)
    twin = copy.deepcopy(model)
    osrl = osrl_trainer(meta["agent"], model, **info["learning_rates"])
    ours = FastTrainer(meta["agent"], twin, **info["learning_rates"])
    generator = torch.Generator(device=device).manual_seed(2)
    size = info["config"]["batch_size"]
    batches = []
    for _ in range(steps):
        index = torch.randint(len(fields[0]), (size,), device=device, generator=generator)
        batches.append([f.index_select(0, index) for f in fields])
    for trainer in (osrl, ours):
        torch.manual_seed(7)
        for batch in batches:
            trainer.train_one_step(*batch)
    synchronize(device)
    theirs = twin.state_dict()
    return max(float((v - theirs[k]).abs().max()) for k, v in model.state_dict().items())


def graph_matches_eager(meta: dict, seed: str, fields, device, steps: int = 8) -> float:
    """Largest parameter difference between a graphed run and the same run stepped eagerly
    (same weights, same generator seed)."""
    from osrl_unlearn.fast.cuda_graphs import GraphedTraining, Source

    info = meta["seeds"][seed]
    model = new_agent(meta["agent"], info["arguments"], int(seed), device)
    twin = copy.deepcopy(model)
    sources = [Source(fields, info["config"]["batch_size"])]
    graphed = GraphedTraining(meta["agent"], model, sources, seed=1, **info["learning_rates"])
    eager = GraphedTraining(meta["agent"], twin, sources, seed=1, **info["learning_rates"])
    graphed.advance(steps)
    graphed.synchronize()
    for _ in range(steps):
        eager._eager_step()
    synchronize(device)
    theirs = twin.state_dict()
    return max(float((v - theirs[k]).abs().max()) for k, v in model.state_dict().items())


def repair_run(variant: str, meta: dict, seed: str, data, poisoned: torch.nn.Module, device):
    """The GraphedTraining of one repair ``variant`` of the ``poisoned`` agent of ``seed``
    (a copy: the poisoned agent is untouched), with the library's own resets."""
    from osrl_unlearn.fast.cuda_graphs import GraphedTraining, Source
    from osrl_unlearn.unlearn.base import reinitialise
    from osrl_unlearn.unlearn.relabel import shrink_perturb

    info = meta["seeds"][seed]
    fields, mask = data
    model = new_agent(meta["agent"], info["arguments"], int(seed), device)
    model.load_state_dict(poisoned.state_dict())
    torch.manual_seed(int(seed))  # the fresh weights a reset or a perturbation draws
    if variant in ("relabel", "relabel+keep-constraint", "relabel+shrink-perturb"):
        if variant == "relabel+shrink-perturb":
            config = info["relabel"]["config"]
            shrink_perturb(model.actor, config["shrink"], config["perturb"])
        else:
            reinitialise(model.actor)
        model.actor_old.load_state_dict(model.actor.state_dict())
    forget = torch.from_numpy(mask).to(device)
    keep_fields = tuple(f[~forget] for f in fields)
    batch_size = info["config"]["batch_size"]
    if variant == "finetune":
        sources = [Source(keep_fields, batch_size)]
    else:
        forget_fields = [f[forget] for f in fields]
        forget_fields[3] = torch.full_like(forget_fields[3], info["relabel"]["reward"])
        forget_fields[4] = torch.full_like(forget_fields[4], info["relabel"]["cost"])
        rows = info["relabel"]["forget_rows"]
        sources = [Source(keep_fields, batch_size - rows), Source(forget_fields, rows)]
    run = GraphedTraining(meta["agent"], model, sources, seed=int(seed) + 1,
                          **info["learning_rates"])  # fmt: skip
    if variant == "relabel+keep-constraint":  # as RelabelStep sets it
        run.step.constraint_rows = batch_size - info["relabel"]["forget_rows"]
    return run


def train(cfg: DeviceCellConfig) -> None:
    from osrl_unlearn.fast.cuda_graphs import GraphedTraining, Source

    stage_start = time.perf_counter()
    meta = json.loads((Path(cfg.cell) / "cell.json").read_text())
    if "relabel+keep-constraint" in cfg.repair_variants and meta["agent"] == "cpq":
        raise ConfigError("relabel+keep-constraint sets the PID multiplier's rows; CPQ has no "
                          "PID Lagrangian: drop that variant")  # fmt: skip
    unknown = set(cfg.repair_variants) - set(REPAIR_VARIANTS)
    if unknown:
        raise ConfigError(f"unknown repair variants {sorted(unknown)}; expected some of "
                          f"{', '.join(REPAIR_VARIANTS)}")  # fmt: skip
    device = torch.device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [s for s in map(str, cfg.seeds) if s in meta["seeds"]]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    report = {"config": asdict(cfg), "device": name,
              "torch": torch.__version__, "history": {}}  # fmt: skip

    def save_report() -> None:
        (out / "log.json").write_text(json.dumps(report, indent=1))

    clean_fields, _ = load_fields(Path(cfg.cell) / "clean.npz", device)
    report["osrl_vs_ours_max_abs"] = osrl_matches_ours(meta, seeds[0], clean_fields, device)
    report["graph_vs_eager_max_abs"] = graph_matches_eager(meta, seeds[0], clean_fields, device)
    log(f"largest parameter difference after 10 steps: OSRL vs ours "
        f"{report['osrl_vs_ours_max_abs']:.3g}, graph vs eager "
        f"{report['graph_vs_eager_max_abs']:.3g}")  # fmt: skip
    report["step_ms"] = step_speeds(meta, seeds[0], clean_fields, device, cfg.speed_steps)
    log(f"ms per step: {report['step_ms']}")
    save_report()

    runs, poisoned_data = {}, {}
    for seed in seeds:
        info = meta["seeds"][seed]
        fields, mask = load_fields(Path(cfg.cell) / f"poisoned-seed{seed}.npz", device)
        poisoned_data[seed] = (fields, mask)
        kinds = (("clean", clean_fields),) if cfg.train_clean else ()
        for kind, data in (*kinds, ("poisoned", fields)):
            model = new_agent(meta["agent"], info["arguments"], int(seed), device)
            if kind == "poisoned":
                report.setdefault("initial_checksum_matches", {})[seed] = (
                    abs(checksum(model) - info["initial_checksum"])
                    <= 1e-6 * info["initial_checksum"]
                )
            runs[f"{kind}-seed{seed}"] = GraphedTraining(
                meta["agent"], model, [Source(data, info["config"]["batch_size"])],
                seed=int(seed), **info["learning_rates"],
            )  # fmt: skip
    # measure the side-by-side speed, then keep the seeds that fit the budget
    for run in runs.values():  # capture every graph first: the probe times replays only
        run.advance(GraphedTraining.WARMUP)
        run.synchronize()
    probe = min(200, cfg.steps - GraphedTraining.WARMUP)
    start = time.perf_counter()
    run_all(runs, GraphedTraining.WARMUP + probe, cfg.chunk, 10**9, {})
    per_step = (time.perf_counter() - start) / probe  # all runs together
    report["side_by_side_ms_per_step"] = {"runs": len(runs), "ms": per_step * 1000}
    fits = max(1, min(len(seeds), int(cfg.time_budget / (per_step / len(seeds) * cfg.steps))))
    if fits < len(seeds):
        dropped = seeds[fits:]
        seeds = seeds[:fits]
        runs = {k: v for k, v in runs.items() if k.rsplit("seed", 1)[1] in seeds}
        report["dropped_seeds"] = dropped
    estimate = per_step * cfg.steps * fits / len(report["initial_checksum_matches"])
    log(f"side by side: {per_step * 1000:.2f} ms per step of all runs; training "
        f"{list(runs)}, about {estimate:.0f} s")  # fmt: skip
    save_report()
    start = time.perf_counter()
    for milestone in sorted({*range(cfg.steps // 4, cfg.steps, max(1, cfg.steps // 4)), cfg.steps}):
        run_all(runs, milestone, cfg.chunk, 10_000, report["history"])
        # kept as training goes: a run cut short by its time limit still returns these
        report["train_seconds"] = time.perf_counter() - start
        report["trained_steps"] = milestone
        for seed in seeds:  # whole agents: repairs and removal checks can start from them later
            states = {kind: {k: v.detach().cpu() for k, v in runs[f"{kind}-seed{seed}"].model.state_dict().items()}
                      for kind in ("clean", "poisoned") if f"{kind}-seed{seed}" in runs}  # fmt: skip
            torch.save(states, out / f"states-seed{seed}.pt")
        save_report()
        log(f"{milestone} steps, {report['train_seconds']:.0f} s")
        if time.perf_counter() - stage_start > cfg.deadline and milestone < cfg.steps:
            report["stopped_early"] = f"deadline: {milestone} of {cfg.steps} steps"
            log(report["stopped_early"])
            break
    report["capture_errors"] = {n: r.capture_error for n, r in runs.items() if r.capture_error}

    repairs = {f"{variant}-seed{seed}": repair_run(variant, meta, seed, poisoned_data[seed],
                                                    runs[f"poisoned-seed{seed}"].model, device)
               for variant in cfg.repair_variants for seed in seeds}  # fmt: skip
    start = time.perf_counter()
    for budget in sorted(cfg.repair_steps):
        run_all(repairs, budget, cfg.chunk, 1000, report["history"])
        repaired = {}
        for name, run in repairs.items():
            variant, seed = name.rsplit("-seed", 1)
            repaired[f"{variant}-{budget}-seed{seed}"] = policy_state(run.model)
        report.setdefault("repair_seconds", {})[budget] = time.perf_counter() - start
        torch.save(repaired, out / f"policies-repaired-{budget}.pt")
        save_report()
        log(f"repaired to {budget} steps ({report['repair_seconds'][budget]:.0f} s)")
    log("done")


# ---- the evaluation stage --------------------------------------------------------------------


def evaluate_stage(cfg: DeviceCellConfig) -> None:
    from osrl_unlearn.agents.checkpoint import build_agent
    from osrl_unlearn.benchmark.stats import bootstrap_mean
    from osrl_unlearn.evaluation import evaluate
    from osrl_unlearn.io import write_json

    meta = json.loads((Path(cfg.cell) / "cell.json").read_text())
    logs, policies = [], {}
    for folder in map(Path, cfg.trained):
        logs.append(json.loads((folder / "log.json").read_text()))
        for path in sorted(folder.glob("states-seed*.pt")):  # whole clean and poisoned agents
            seed = path.stem.rsplit("seed", 1)[1]
            for kind, state in torch.load(path, weights_only=True).items():
                policies[f"{kind}-seed{seed}"] = state
        for path in sorted(folder.glob("policies-*.pt")):  # repaired policies (actor and VAE)
            policies.update(torch.load(path, weights_only=True))
    report = {"device": logs[0]["device"], "calls": logs,
              "trained_steps": min(log.get("trained_steps", cfg.steps) for log in logs)}  # fmt: skip
    results_dir = Path(cfg.results_dir)
    cell = f"{meta['task']}/{meta['agent']}/{meta['attack']}-{meta['ratio']}"
    by_policy: dict[str, list] = {}
    for name, state in sorted(policies.items()):
        policy, seed = name.rsplit("-seed", 1)
        info = meta["seeds"][seed]
        agent = build_agent(meta["agent"], info["config"])
        missing, unexpected = agent.load_state_dict(state, strict=False)
        if unexpected or any(k.startswith(POLICY_PARTS) for k in missing):
            raise ConfigError(f"{name}: not a {meta['agent']} policy ({unexpected or missing}); "
                              "pass the folders the train stage wrote")  # fmt: skip
        agent.eval()
        result = evaluate(agent, meta["task"], cfg.episodes, seed=int(seed) + 10_000,
                          cost_limit=info["config"]["cost_limit"], show_progress=False)  # fmt: skip
        trained = report.get("trained_steps", cfg.steps)
        steps = trained if policy in ("clean", "poisoned") else int(policy.rsplit("-", 1)[1])
        payload = {"task": meta["task"], "agent": meta["agent"], "attack": meta["attack"],
                   "ratio": meta["ratio"], "seed": int(seed), "policy": policy, "steps": steps,
                   **result.summary(), "rewards": result.rewards.tolist(),
                   "costs": result.costs.tolist(),
                   "normalized_rewards": result.normalized_rewards.tolist(),
                   "normalized_costs": result.normalized_costs.tolist(),
                   "trained_on": report["device"], "profile": "osrl",
                   "whole_agent": not missing,
                   "data_hash": info["poisoned_hash"] if policy != "clean" else meta["clean_hash"]}  # fmt: skip
        write_json(results_dir / cell / f"seed{seed}" / f"{policy}.json", payload)
        by_policy.setdefault(policy, []).append(result)
        print(
            f"{name}: cost {result.summary()['eval/normalized_cost']:.2f} reward "
            f"{result.summary()['eval/normalized_reward']:.2f}",
            flush=True,
        )
    write_json(results_dir / cell / "device-log.json", report)
    config = next(iter(meta["seeds"].values()))["config"]
    lines = [f"# {cell}: hidden {config['a_hidden_sizes']}, batch {config['batch_size']}, "
             f"{report.get('trained_steps', cfg.steps):,} training steps ({report['device']})",
             "", "| policy | seeds | normalised cost [95 % CI] | normalised reward [95 % CI] | per seed (cost) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for policy, results in by_policy.items():
        cost = bootstrap_mean([r.normalized_costs for r in results])
        reward = bootstrap_mean([r.normalized_rewards for r in results])
        seeds = ", ".join(f"{r.normalized_costs.mean():.2f}" for r in results)
        lines.append(f"| {policy} | {len(results)} | {cost.mean:.2f} [{cost.low:.2f}, "
                     f"{cost.high:.2f}] | {reward.mean:.2f} [{reward.low:.2f}, {reward.high:.2f}] | "
                     f"{seeds} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    Path(f"{results_dir}.md").write_text(text)
    print(text)


def main(cfg: DeviceCellConfig) -> None:
    stages = {"prepare": prepare, "train": train, "evaluate": evaluate_stage}
    if cfg.stage not in stages:
        raise ConfigError(f"unknown stage {cfg.stage!r}; expected one of {', '.join(stages)}")
    stages[cfg.stage](cfg)


if __name__ == "__main__":
    from osrl_unlearn.cli import run_script

    sys.exit(run_script(main, DeviceCellConfig))
