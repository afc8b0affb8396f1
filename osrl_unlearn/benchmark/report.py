"""Benchmark results (one JSON per policy) -> ``benchmarks/results/<profile>.md`` and PNG plots.

A cell is (task, agent, attack, ratio) with its training seeds pooled. Every figure is the mean
over seeds of each seed's mean over its evaluation episodes, with a 95 % percentile bootstrap
interval that resamples seeds, then episodes within each seed (:mod:`osrl_unlearn.benchmark.stats`).
Per-episode normalised scores are derived from the raw per-episode returns each JSON holds, with
the task's DSRL reference returns, so the report regenerates from the committed files alone.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from osrl_unlearn.benchmark.grid import ALL_METHODS, GRID_PROFILES, SAFE_COST
from osrl_unlearn.benchmark.stats import RESAMPLES, Estimate, bootstrap_mean, paired_difference
from osrl_unlearn.io import atomic_path

Result = dict[str, Any]
CellKey = tuple[str, str, int, str, float]  # task, agent, seed, attack, ratio
Runs = dict[int, Result]
"""One policy's results by training seed."""
PooledKey = tuple[str, str, str, float]  # task, agent, attack, ratio
Cell = dict[str, Runs]
"""A cell's policies, each with its runs; ``clean`` is the (task, agent) baseline."""

DEFAULT_REFERENCE = "safe-rule"
"""The policy every defence is compared with, episode by episode."""
SAFE_BY_DOING_NOTHING = "safe by doing nothing"
NOTHING_TO_COMPARE = "No defence was measured on a cell the attack made unsafe: nothing to compare."


def load_results(results_dir: str | Path) -> list[Result]:
    """Every policy result under ``results_dir/cells``."""
    return [json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("cells/**/*.json"))]


def group_cells(results: list[Result]) -> dict[CellKey, dict[str, Result]]:
    """Policies per attacked cell and seed, with the (task, agent, seed) clean baseline as
    ``clean``."""
    clean = {(r["task"], r["agent"], r["seed"]): r for r in results if r["policy"] == "clean"}
    cells: dict[CellKey, dict[str, Result]] = defaultdict(dict)
    for r in results:
        if r["attack"] is None:
            continue
        key = (r["task"], r["agent"], r["seed"], r["attack"], r["ratio"])
        cells[key][r["policy"]] = r
        if (r["task"], r["agent"], r["seed"]) in clean:
            cells[key]["clean"] = clean[(r["task"], r["agent"], r["seed"])]
    return dict(sorted(cells.items()))


def clean_runs(results: list[Result]) -> dict[tuple[str, str], Runs]:
    """The clean baseline of each (task, agent), by seed."""
    clean: dict[tuple[str, str], Runs] = defaultdict(dict)
    for r in results:
        if r["attack"] is None:
            clean[(r["task"], r["agent"])][r["seed"]] = r
    return {pair: dict(sorted(runs.items())) for pair, runs in sorted(clean.items())}


def pool_seeds(results: list[Result]) -> dict[PooledKey, Cell]:
    """Policies per cell (task, agent, attack, ratio) with their runs by seed; every seed's clean
    baseline of (task, agent) as ``clean``."""
    clean = clean_runs(results)
    cells: dict[PooledKey, Cell] = defaultdict(lambda: defaultdict(dict))
    for r in results:
        if r["attack"] is not None:
            cells[(r["task"], r["agent"], r["attack"], r["ratio"])][r["policy"]][r["seed"]] = r
    pooled = {}
    for key, found in sorted(cells.items()):
        if key[:2] in clean:
            found["clean"] = clean[key[:2]]
        pooled[key] = {p: dict(sorted(runs.items())) for p, runs in found.items()}
    return pooled


@cache
def _reference_returns(task: str):
    from osrl_unlearn.tasks import get_task

    return get_task(task).normalized_score


def episode_scores(result: Result) -> tuple[np.ndarray, np.ndarray]:
    """Normalised reward and cost of each evaluation episode of one result.

    Taken from ``normalized_rewards``/``normalized_costs`` when the result lists them, else
    derived from the raw ``rewards``/``costs`` with the task's DSRL reference returns
    (:meth:`TaskSpec.normalized_score`) and the run's cost limit, and checked against the result's
    own mean. A result without per-episode lists counts as one episode at its mean.
    """
    if "normalized_rewards" in result:
        return np.asarray(result["normalized_rewards"]), np.asarray(result["normalized_costs"])
    if "rewards" not in result:
        return (np.asarray([result["eval/normalized_reward"]]),
                np.asarray([result["eval/normalized_cost"]]))  # fmt: skip
    normalise = _reference_returns(result["task"])
    limit = result.get("settings", {}).get("cost_limit", 10.0)
    pairs = [
        normalise(r, c, limit) for r, c in zip(result["rewards"], result["costs"], strict=True)
    ]
    rewards, costs = np.asarray([p[0] for p in pairs]), np.asarray([p[1] for p in pairs])
    for name, values in (("reward", rewards), ("cost", costs)):
        stored = result.get(f"eval/normalized_{name}")
        if stored is not None and not np.isclose(values.mean(), stored, rtol=1e-6, atol=1e-9):
            raise ValueError(
                f"{result['task']} {result['agent']} seed {result['seed']} {result['policy']}: "
                f"per-episode normalised {name} averages {values.mean():.6g}, the result says "
                f"{stored:.6g}"
            )
    return rewards, costs


@dataclass(frozen=True)
class PolicySummary:
    """One policy in one cell, seeds pooled."""

    reward: Estimate
    """Normalised reward."""
    cost: Estimate
    """Normalised cost (at most 1 is safe)."""
    seeds: tuple[int, ...]
    episodes: tuple[int, ...]
    """Evaluation episodes of each seed."""
    competence_threshold: float | None = None
    """Normalised reward a competent clean agent reaches (from the results), if given."""

    @property
    def safe(self) -> bool:
        """Mean normalised cost over seeds at most 1."""
        return self.cost.mean <= SAFE_COST

    @property
    def competent(self) -> bool | None:
        """Mean normalised reward at least the competence threshold; None without one."""
        if self.competence_threshold is None:
            return None
        return self.reward.mean >= self.competence_threshold


def summarise(runs: Runs, *, resamples: int = RESAMPLES) -> PolicySummary:
    """Mean normalised reward and cost of one policy over its seeds and episodes, with 95 %
    bootstrap intervals."""
    seeds = sorted(runs)
    scores = [episode_scores(runs[s]) for s in seeds]
    thresholds = [runs[s]["competence_threshold"] for s in seeds
                  if runs[s].get("competence_threshold") is not None]  # fmt: skip
    return PolicySummary(
        reward=bootstrap_mean([r for r, _ in scores], resamples=resamples),
        cost=bootstrap_mean([c for _, c in scores], resamples=resamples),
        seeds=tuple(seeds),
        episodes=tuple(len(r) for r, _ in scores),
        competence_threshold=float(np.mean(thresholds)) if thresholds else None,
    )


@dataclass(frozen=True)
class Comparison:
    """Policy A minus policy B on the same seeded episodes."""

    cost: Estimate
    reward: Estimate


def compare(a: Runs, b: Runs, *, resamples: int = RESAMPLES) -> Comparison | None:
    """Paired differences of normalised cost and reward, A minus B, over the seeds both ran and
    the episodes both ran in each (episode ``i`` of a seed starts from the same seeded state for
    every policy); None when they share no seed."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    pairs = []
    for s in seeds:
        (ra, ca), (rb, cb) = episode_scores(a[s]), episode_scores(b[s])
        n = min(len(ra), len(rb))
        pairs.append((ra[:n], ca[:n], rb[:n], cb[:n]))
    return Comparison(
        cost=paired_difference([p[1] for p in pairs], [p[3] for p in pairs], resamples=resamples),
        reward=paired_difference([p[0] for p in pairs], [p[2] for p in pairs], resamples=resamples),
    )


def verdict(defence: PolicySummary, clean: PolicySummary | None) -> str:
    """``unsafe`` (mean normalised cost over seeds above 1); ``safe by doing nothing`` (safe, but
    its mean reward below the clean agent's lower 95 % bound); else ``repaired``."""
    if not defence.safe:
        return "unsafe"
    if clean is not None and defence.reward.mean < clean.reward.low:
        return SAFE_BY_DOING_NOTHING
    return "repaired"


class CellStats:
    """Summaries (and paired comparisons) of every policy of every cell, computed once.

    Args:
        cells: from :func:`pool_seeds`.
        clean: every clean baseline (:func:`clean_runs`), also those of (task, agent) pairs
            without an attacked cell yet; by default those the cells hold.
        resamples: bootstrap resamples per interval.
    """

    def __init__(
        self,
        cells: dict[PooledKey, Cell],
        clean: dict[tuple[str, str], Runs] | None = None,
        *,
        resamples: int = RESAMPLES,
    ):
        self.cells = cells
        self.clean = dict(clean) if clean is not None else {}
        for key, found in cells.items():
            if "clean" in found:
                self.clean.setdefault(key[:2], found["clean"])
        self.resamples = resamples
        self._summaries: dict[tuple[Any, ...], PolicySummary] = {}
        self._comparisons: dict[tuple[Any, ...], Comparison | None] = {}

    def summary(self, key: PooledKey, policy: str) -> PolicySummary | None:
        if policy == "clean":  # shared by every cell of (task, agent)
            return self.baseline(key[:2]) if key[:2] in self.clean else None
        runs = self.cells[key].get(policy)
        if not runs:
            return None
        memo = (*key, policy)
        if memo not in self._summaries:
            self._summaries[memo] = summarise(runs, resamples=self.resamples)
        return self._summaries[memo]

    def comparison(self, key: PooledKey, policy: str, reference: str) -> Comparison | None:
        found = self.cells[key]
        if policy not in found or reference not in found or policy == reference:
            return None
        memo = (*key, policy, reference)
        if memo not in self._comparisons:
            self._comparisons[memo] = compare(found[policy], found[reference],
                                              resamples=self.resamples)  # fmt: skip
        return self._comparisons[memo]

    def baselines(self) -> dict[tuple[str, str], PolicySummary]:
        """The clean baseline of each (task, agent)."""
        return {pair: self.baseline(pair) for pair in sorted(self.clean)}

    def baseline(self, pair: tuple[str, str]) -> PolicySummary:
        memo = (*pair, "clean")
        if memo not in self._summaries:
            self._summaries[memo] = summarise(self.clean[pair], resamples=self.resamples)
        return self._summaries[memo]

    def attacked(self) -> list[PooledKey]:
        """Cells where the attack made a safe policy unsafe: the clean baseline's mean normalised
        cost over seeds at most 1, the poisoned policy's above 1. Where the clean agent is
        already unsafe (or was not measured), no defence can show that it removed the attack's
        harm."""
        out = []
        for key in self.cells:
            clean, poisoned = self.summary(key, "clean"), self.summary(key, "poisoned")
            if clean is not None and clean.safe and poisoned is not None and not poisoned.safe:
                out.append(key)
        return out

    def attacked_runs(self) -> list[tuple[PooledKey, int]]:
        """(cell, seed) pairs where the attack made that seed's safe clean agent unsafe: the
        seed's clean agent at most 1 in mean normalised cost over its episodes, its poisoned
        agent above 1. A finer, secondary view of :meth:`attacked` (one seed's episodes each):
        it counts the seeds of agents whose clean baseline is unsafe on average but safe on
        some seeds."""
        out = []
        for key, found in self.cells.items():
            clean = self.clean.get(key[:2], {})
            for seed, poisoned in found.get("poisoned", {}).items():
                if seed in clean and run_cost(clean[seed]) <= SAFE_COST < run_cost(poisoned):
                    out.append((key, seed))
        return out


def run_cost(result: Result) -> float:
    """One run's mean normalised cost over its evaluation episodes."""
    return float(episode_scores(result)[1].mean())


def attacked_runs_table(stats: CellStats, defences: list[str]) -> str:
    """Per task and agent, over :meth:`CellStats.attacked_runs`: how many of those seeds each
    defence made safe (that seed's mean normalised cost ≤ 1), and its mean cost over them."""
    runs = stats.attacked_runs()
    if not runs:
        return "No seed's safe clean agent was made unsafe by the attack."
    groups: dict[tuple[str, str], list[tuple[PooledKey, int]]] = defaultdict(list)
    for key, seed in runs:
        groups[key[:2]].append((key, seed))
    shown = [d for d in defences if any(seed in stats.cells[k].get(d, {}) for k, seed in runs)]
    lines = ["| task | agent | attacked runs (cells × seeds) | "
             + " | ".join(f"{d}: safe (mean cost)" for d in shown) + " |",
             "|" + "---|" * (3 + len(shown))]  # fmt: skip
    totals = {"": runs} if len(groups) > 1 else {}
    for label, members in [*sorted(groups.items()), *totals.items()]:
        cells = []
        for d in shown:
            costs = [run_cost(stats.cells[k][d][seed]) for k, seed in members
                     if seed in stats.cells[k].get(d, {})]  # fmt: skip
            safe = sum(c <= SAFE_COST for c in costs)
            cells.append(f"{safe} of {len(costs)} ({_mean(costs):.2f})" if costs else "–")
        name = f"{_short_task(label[0])} | {label[1]}" if label else "all | all"
        lines.append(f"| {name} | {len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _short_task(task: str) -> str:
    return task.removeprefix("Offline").removesuffix("-v0").removesuffix("Gymnasium")


def _cost_text(estimate: Estimate) -> str:
    """``mean [low, high]``, the mean in bold when unsafe."""
    text = estimate.format()
    return text if estimate.mean <= SAFE_COST else f"**{text.replace(' [', '** [', 1)}"


def _seeds_text(seeds: Iterable[int]) -> str:
    return ", ".join(str(s) for s in sorted(set(seeds)))


def _episodes_text(counts: Iterable[int]) -> str:
    counts = sorted(set(counts))
    if not counts:
        return "–"
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


def _cell_label(key: PooledKey) -> str:
    task, agent, attack, ratio = key
    return f"| {_short_task(task)} | {agent} | {attack} | {ratio:g} |"


def cell_table(stats: CellStats, policies: list[str], metric: str) -> str:
    """Every cell x policy: the normalised ``metric`` (``cost`` or ``reward``), mean over seeds
    and 95 % interval; the seeds and episodes per seed it is built from (a policy measured on
    fewer of the cell's seeds names its own)."""
    head = "| task | agent | attack | ratio | seeds | episodes | " + " | ".join(policies) + " |"
    lines = [head, "|" + "---|" * (6 + len(policies))]
    for key in stats.cells:
        found = [stats.summary(key, p) for p in policies]
        present = [s for s in found if s is not None]
        cell_seeds = {seed for s in present for seed in s.seeds}
        seeds = _seeds_text(cell_seeds)
        episodes = _episodes_text(n for s in present for n in s.episodes)
        values = []
        for s in found:
            if s is None:
                values.append("–")
                continue
            text = _cost_text(s.cost) if metric == "cost" else s.reward.format()
            if set(s.seeds) != cell_seeds:
                text += f" (seed{'s' * (len(s.seeds) > 1)} {_seeds_text(s.seeds)})"
            values.append(text)
        lines.append(f"{_cell_label(key)} {seeds} | {episodes} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def baseline_table(stats: CellStats) -> str:
    """The clean agent of each (task, agent): safe, competent, with intervals."""
    lines = ["| task | agent | seeds | episodes | norm. reward | norm. cost | safe | competent |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (task, agent), clean in sorted(stats.baselines().items()):
        if clean.competent is None:
            competent = "not judged (no threshold)"
        else:
            mark = "yes" if clean.competent else "**no**"
            competent = f"{mark} (threshold {clean.competence_threshold:.2f})"
        lines.append(
            f"| {_short_task(task)} | {agent} | {_seeds_text(clean.seeds)} | "
            f"{_episodes_text(clean.episodes)} | {clean.reward.format()} | {_cost_text(clean.cost)}"
            f" | {'yes' if clean.safe else '**no**'} | {competent} |"
        )
    return "\n".join(lines)


def attacked_statement(stats: CellStats) -> str:
    """How many cells the attack made unsafe, and why the others are left out."""
    attacked = stats.attacked()
    no_clean = unsafe_clean = stayed_safe = 0
    for key in stats.cells:
        clean, poisoned = stats.summary(key, "clean"), stats.summary(key, "poisoned")
        if clean is None:
            no_clean += 1
        elif not clean.safe:
            unsafe_clean += 1
        elif poisoned is None or poisoned.safe:
            stayed_safe += 1
    left_out = [f"{unsafe_clean} whose clean baseline is already unsafe",
                f"{stayed_safe} where the poisoned policy stayed safe"]  # fmt: skip
    if no_clean:
        left_out.append(f"{no_clean} without a clean baseline")
    named = "; ".join(f"{_short_task(k[0])} {k[1]} {k[2]} {k[3]:g}" for k in attacked)
    return (
        "Cells the attack made unsafe (clean mean normalised cost ≤ 1, poisoned > 1, means over "
        f"seeds): **{len(attacked)} of {len(stats.cells)}**"
        + (f" ({named})" if named else "")
        + f"; left out: {', '.join(left_out)}."
    )


def _direction_counts(diffs: list[Estimate]) -> str:
    """``lower / no difference / higher``: cells whose interval lies below 0, spans 0, above 0."""
    if not diffs:
        return "–"
    lower = sum(d.high < 0 for d in diffs)
    higher = sum(d.low > 0 for d in diffs)
    return f"{lower} / {len(diffs) - lower - higher} / {higher}"


def defence_summary(
    stats: CellStats, defences: list[str], reference: str, *, statement: bool = True
) -> str:
    """Per defence, over the cells the attack made unsafe: how many it made safe, how many of
    those it repaired and how many it made safe by doing nothing, its mean scores, and how it
    compares with ``reference`` on the same episodes (preceded by :func:`attacked_statement`
    when ``statement``)."""
    attacked = stats.attacked()
    lines = [attacked_statement(stats), ""] if statement else []
    if not any(stats.summary(k, d) for k in attacked for d in defences):
        return "\n".join([*lines, NOTHING_TO_COMPARE])
    lines += [
        f"| defence | made safe | repaired | {SAFE_BY_DOING_NOTHING} | norm. cost (mean over "
        f"cells) | norm. reward (mean over cells) | cost vs {reference}: lower / no diff. / "
        f"higher | reward vs {reference}: lower / no diff. / higher |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for defence in defences:
        keys = [k for k in attacked if stats.summary(k, defence) is not None]
        if not keys:
            continue
        verdicts = [verdict(stats.summary(k, defence), stats.summary(k, "clean")) for k in keys]
        safe = sum(v != "unsafe" for v in verdicts)
        idle = verdicts.count(SAFE_BY_DOING_NOTHING)
        cost = np.mean([stats.summary(k, defence).cost.mean for k in keys])
        reward = np.mean([stats.summary(k, defence).reward.mean for k in keys])
        comparisons = [c for k in keys if (c := stats.comparison(k, defence, reference))]
        lines.append(
            f"| {defence} | {safe} / {len(keys)} | {safe - idle} / {len(keys)} | {idle} / "
            f"{len(keys)} | {cost:.2f} | {reward:.2f} | "
            f"{_direction_counts([c.cost for c in comparisons])} | "
            f"{_direction_counts([c.reward for c in comparisons])} |"
        )
    return "\n".join(lines)


def attacked_cell_table(stats: CellStats, policies: list[str], reference: str) -> str:
    """Each cell the attack made unsafe, each policy: its scores with intervals, its verdict, and
    its paired difference from ``reference`` on the same episodes."""
    if not stats.attacked():
        return NOTHING_TO_COMPARE
    lines = [
        "| task | agent | attack | ratio | seeds | policy | norm. cost | norm. reward | verdict | "
        f"Δ cost vs {reference} | Δ reward vs {reference} |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in stats.attacked():
        clean = stats.summary(key, "clean")
        for policy in ["clean", "poisoned", *policies]:
            s = stats.summary(key, policy)
            if s is None:
                continue
            if policy == "clean":
                judged = f"a repair needs reward ≥ {clean.reward.low:.2f}"
            elif policy == "poisoned":
                judged = "unsafe (attacked)"
            else:
                judged = verdict(s, clean)
            c = stats.comparison(key, policy, reference)
            delta = (c.cost.format(), c.reward.format()) if c else ("–", "–")
            lines.append(
                f"{_cell_label(key)} {_seeds_text(s.seeds)} | {policy} | {_cost_text(s.cost)} | "
                f"{s.reward.format()} | {judged} | {delta[0]} | {delta[1]} |"
            )
    return "\n".join(lines)


def timing_table(stats: CellStats, defences: list[str]) -> str:
    """Mean wall time of each defence against retraining, per task and agent (seeds pooled;
    agents without a timed defence, whose runs the grid did not repair, are left out), and the
    ratio of their CPU times where every run of both recorded one (runs sharing the machine
    stretch wall time by whatever else ran; CPU time is the work alone)."""
    groups: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for (task, agent, *_), found in stats.cells.items():
        for policy, runs in found.items():
            if policy != "clean":
                groups[(task, agent)][policy] += [r for r in runs.values() if r.get("wall_seconds")]

    def means(runs: list[dict] | None) -> tuple[float | None, float | None]:
        runs = runs or []
        return (_mean([r["wall_seconds"] for r in runs]),
                _complete_mean([r.get("cpu_seconds") for r in runs]))  # fmt: skip

    shown = [d for d in defences if d != "retrain"]
    lines = ["| task | agent | retrain | " + " | ".join(shown) + " |",
             "|" + "---|" * (3 + len(shown))]  # fmt: skip
    for (task, agent), times in sorted(groups.items()):
        if not any(times.get(d) for d in defences):
            continue
        retrain, cpu_retrain = means(times.get("retrain"))
        cells_text = []
        for d in shown:
            mean, cpu_mean = means(times.get(d))
            if mean is None:
                cells_text.append("–")
            elif retrain:
                on_cpu = (f"; CPU {cpu_mean / cpu_retrain:.2f}×"
                          if cpu_mean is not None and cpu_retrain else "")  # fmt: skip
                cells_text.append(f"{mean:.0f} s ({mean / retrain:.2f}×{on_cpu})")
            else:
                cells_text.append(f"{mean:.0f} s")
        retrain_text = f"{retrain:.0f} s" if retrain else "–"
        lines.append(f"| {_short_task(task)} | {agent} | {retrain_text} | "
                     + " | ".join(cells_text) + " |")  # fmt: skip
    return "\n".join(lines)


def _complete_mean(values: list | None) -> float | None:
    """The mean of ``values`` when every one was recorded (no None), else None."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def removal_table(stats: CellStats, defences: list[str]) -> str:
    """Per defence, over the runs its repair left safe (cost ≤ 1) that carry a removal check:
    how many there are, and their mean normalised cost after further training on keep data
    only and after a short training on the poisoned data, with how many stay safe after each.
    (A policy left unsafe is no repair: the grid no longer checks it, and older results that
    did are left out.)"""
    lines = ["| defence | runs safe after the repair | after keep-only training (still safe) | "
             "after poisoned training (still safe) |", "|---|---|---|---|"]  # fmt: skip
    for defence in defences:
        runs = [r for found in stats.cells.values() for r in found.get(defence, {}).values()
                if r.get("removal") and r["eval/normalized_cost"] <= SAFE_COST]  # fmt: skip
        if not runs:
            continue
        cells = []
        for phase in ("keep_only", "poisoned"):
            costs = [r["removal"][phase]["eval/normalized_cost"] for r in runs
                     if phase in r["removal"]]  # fmt: skip
            if not costs:
                cells.append("–")
                continue
            steps = runs[0]["removal"][phase]["steps"]
            safe = sum(c <= SAFE_COST for c in costs)
            cells.append(f"{_mean(costs):.2f} ({safe} of {len(costs)}; {steps} steps)")
        lines.append(f"| {defence} | {len(runs)} | " + " | ".join(cells) + " |")
    if len(lines) == 2:
        return "No policy safe after its repair carries a removal check."
    return "\n".join(lines)


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None


def plot_cells(stats: CellStats, policies: list[str], folder: Path) -> list[Path]:
    """One PNG per task x agent: normalised cost (cost limit drawn) and reward per cell and
    policy, means over seeds with 95 % bootstrap intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_pair: dict[tuple[str, str], list[PooledKey]] = defaultdict(list)
    for key in stats.cells:
        by_pair[key[:2]].append(key)
    written = []
    for (task, agent), keys in sorted(by_pair.items()):
        fig, axes = plt.subplots(2, 1, figsize=(max(7, 1.8 * len(keys) + 3), 7), sharex=True)
        width = 0.8 / len(policies)
        for ax, metric in zip(axes, ("cost", "reward"), strict=True):
            for i, policy in enumerate(policies):
                xs, ys, errors = [], [], [[], []]
                for j, key in enumerate(keys):
                    s = stats.summary(key, policy)
                    if s is None:
                        continue
                    e = s.cost if metric == "cost" else s.reward
                    xs.append(j + i * width)
                    ys.append(e.mean)
                    errors[0].append(max(e.mean - e.low, 0.0))
                    errors[1].append(max(e.high - e.mean, 0.0))
                ax.bar(xs, ys, width, yerr=errors, capsize=2, error_kw={"linewidth": 0.8},
                       label=policy if metric == "cost" else None, color=f"C{i % 10}")  # fmt: skip
            if metric == "cost":
                ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="cost limit")
                ax.set_ylabel("normalised cost (≤ 1 is safe)")
                ax.legend(fontsize=7, ncol=3)
            else:
                ax.axhline(0.0, color="grey", linewidth=0.5)
                ax.set_ylabel("normalised reward")
        labels = []
        for key in keys:
            seeds = {seed for runs in stats.cells[key].values() for seed in runs}
            labels.append(f"{key[2]} {key[3]:g}\n{len(seeds)} seed{'s' * (len(seeds) > 1)}")
        axes[1].set_xticks([j + 0.4 - width / 2 for j in range(len(keys))], labels, fontsize=8)
        axes[0].set_title(f"{_short_task(task)}, {agent}: means over seeds, 95 % bootstrap "
                          "intervals", fontsize=10)  # fmt: skip
        fig.tight_layout()
        out = folder / f"{_short_task(task)}-{agent}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out, overwrite=True) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        written.append(out)
    return written


def _basis(results: list[Result], stats: CellStats, profile: str) -> list[str]:
    """What the figures are built from, and what the profile asks for."""
    seeds_per_cell: dict[int, int] = defaultdict(int)
    for found in stats.cells.values():
        seeds_per_cell[len({s for runs in found.values() for s in runs})] += 1
    per_cell = ", ".join(f"{n} seed{'s' * (n > 1)} in {c} cell{'s' * (c > 1)}"
                         for n, c in sorted(seeds_per_cell.items()))  # fmt: skip
    episodes = _episodes_text(int(r["eval/episodes"]) for r in results if "eval/episodes" in r)
    versions = sorted({r.get("code_version", "?") for r in results})
    text = [
        f"{len(results)} policies in {len(stats.cells)} cells (task, agent, attack, ratio; "
        f"training seeds pooled); code version(s): {', '.join(versions)}.",
        "",
        f"**Built from:** {per_cell or 'no cells'}; {episodes} evaluation episodes per policy and "
        "seed.",
    ]
    if profile in GRID_PROFILES:
        wanted = GRID_PROFILES[profile]
        measured = {int(r["eval/episodes"]) for r in results if "eval/episodes" in r}
        all_seeds = all(set(wanted["seeds"]) <= {s for runs in found.values() for s in runs}
                        for found in stats.cells.values())  # fmt: skip
        if measured != {wanted["eval_episodes"]} or not all_seeds:
            text[-1] += (f" The `{profile}` profile now asks for seeds {wanted['seeds']} and "
                         f"{wanted['eval_episodes']} episodes; results measured under earlier "
                         "settings are kept and reported as measured.")  # fmt: skip
        if wanted.get("defend") == "judgeable":
            text[-1] += (" Defences repair only the runs a repair can be judged on: where a "
                         "seed's clean agent is unsafe and its task and agent's clean baseline is "
                         "unsafe on the mean too, neither the run nor its cell can be one the "
                         "attack made unsafe, and only the poisoned agent is measured (a policy "
                         "on fewer seeds than its cell names them; `benchmarks/run.py --defend "
                         "all` repairs every run).")  # fmt: skip
    text += [
        "",
        "Every figure is the mean over training seeds of each seed's mean over its evaluation "
        "episodes, with its 95 % percentile bootstrap interval in brackets (seeds resampled, "
        f"then episodes within each seed; {stats.resamples} resamples, fixed seed). With one "
        "seed the interval covers episode-to-episode noise only, not seed-to-seed variation. "
        "Normalised cost ≤ 1 is safe; unsafe means in bold.",
    ]
    return text


def write_report(
    results_dir: str | Path,
    out: str | Path,
    profile: str,
    *,
    reference: str = DEFAULT_REFERENCE,
    resamples: int = RESAMPLES,
) -> Path:
    """The markdown report of every result under ``results_dir``, plots next to it.

    Args:
        results_dir: folder holding ``cells/**/<policy>.json``.
        out: the markdown file to write; plots go to ``<its name>-plots/`` beside it (a
            report of another results folder never overwrites the profile's plots).
        profile: the grid profile's name (titles, and what it asks for).
        reference: the policy every defence is compared with on the same episodes.
        resamples: bootstrap resamples per interval.
    """
    results = load_results(results_dir)
    stats = CellStats(pool_seeds(results), clean_runs(results), resamples=resamples)
    present = {p for found in stats.cells.values() for p in found}
    defences = [m for m in ALL_METHODS if m in present]
    ablations = sorted(p for p in present if "+" in p)
    out = Path(out)
    policies = ["clean", "poisoned", *defences]
    plots = plot_cells(stats, policies, out.parent / f"{out.stem}-plots")
    baselines = stats.baselines()
    safe = sum(b.safe for b in baselines.values())
    judged = [b for b in baselines.values() if b.competent is not None]
    competent = (f"{sum(b.competent for b in judged)} of {len(judged)} judged are competent"
                 if judged else "none judged for competence (no `competence_threshold` in the "
                 "results)")  # fmt: skip
    if reference not in present:
        compared = f"`{reference}` was not measured, so defences are not compared pairwise."
    else:
        compared = (f"Δ columns: the policy minus `{reference}` on the same seeded episodes "
                    "(episode i of seed s against episode i of seed s), with the paired "
                    "bootstrap interval; counts of cells whose interval lies below 0, spans 0, or "
                    "lies above 0.")  # fmt: skip
    text = [
        f"# Benchmark results: `{profile}` profile",
        "",
        *_basis(results, stats, profile),
        "",
        "## Clean baselines",
        "",
        f"Per task and agent, trained on clean data: {safe} of {len(baselines)} safe (mean "
        f"normalised cost ≤ 1); {competent}.",
        "",
        baseline_table(stats),
        "",
        "## Before and after, per cell",
        "",
        "### Normalised cost",
        "",
        cell_table(stats, policies, "cost"),
        "",
        "### Normalised reward",
        "",
        cell_table(stats, policies, "reward"),
        "",
        "## Defences compared",
        "",
        "A defence makes a cell safe when its mean normalised cost over the cell's seeds is ≤ 1. "
        f"It counts as a repair only if its mean normalised reward is also at least the clean "
        f"agent's lower 95 % bound; safe with less reward is *{SAFE_BY_DOING_NOTHING}*. "
        + compared,
        "",
        defence_summary(stats, defences, reference),
        "",
        "### Per attacked cell",
        "",
        attacked_cell_table(stats, defences, reference),
        "",
        "### Seed by seed",
        "",
        "A finer view, secondary to the cell counts above: every (cell, training seed) whose "
        "clean agent is safe on that seed and whose poisoned agent is not, including seeds of "
        "agents whose clean baseline is unsafe on average; a defence makes such a run safe when "
        "that seed's mean normalised cost over its episodes is ≤ 1.",
        "",
        attacked_runs_table(stats, defences),
        "",
        "## Cost of each defence against retraining",
        "",
        timing_table(stats, defences),
        "",
        "## Removal, not masking",
        "",
        "Each policy safe after its repair (and the retrained one, when safe) trained on from a "
        "copy: on keep data only for as many steps as the repair took, and separately on the "
        "poisoned data for a short budget (`osrl_unlearn.benchmark.removal`). A repair that "
        "removed the poison stays safe as often as the retrained agent under the same treatment.",
        "",
        removal_table(stats, defences),
        "",
    ]
    if ablations:
        text += ["## Ablations of Safe-RULE", "",
                 "### Normalised cost", "",
                 cell_table(stats, ["poisoned", "safe-rule", *ablations], "cost"), "",
                 "### Normalised reward", "",
                 cell_table(stats, ["poisoned", "safe-rule", *ablations], "reward"), "",
                 "### Over the attacked cells", "",
                 defence_summary(stats, ["safe-rule", *ablations], "safe-rule", statement=False),
                 ""]  # fmt: skip
    text += ["## Plots", ""]
    text += [f"![{p.stem}]({p.parent.name}/{p.name})" for p in plots]
    with atomic_path(out, overwrite=True) as tmp:
        Path(tmp).write_text("\n".join(text) + "\n")
    return out
