"""Benchmark results (one JSON per policy) -> ``benchmarks/results/<profile>.md`` and PNG plots."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from osrl_unlearn.benchmark.grid import ALL_METHODS
from osrl_unlearn.io import atomic_path

Result = dict[str, Any]
CellKey = tuple[str, str, int, str, float]  # task, agent, seed, attack, ratio


def load_results(results_dir: str | Path) -> list[Result]:
    """Every policy result under ``results_dir/cells``."""
    return [json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("cells/**/*.json"))]


def group_cells(results: list[Result]) -> dict[CellKey, dict[str, Result]]:
    """Policies per attacked cell, with the (task, agent, seed) clean baseline as ``clean``."""
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


def _short_task(task: str) -> str:
    return task.removeprefix("Offline").removesuffix("-v0").removesuffix("Gymnasium")


def _pair(result: Result | None) -> str:
    """``reward / cost`` normalised, unsafe costs in bold."""
    if result is None:
        return "–"
    cost = result["eval/normalized_cost"]
    cost_text = f"{cost:.2f}" if cost <= 1 else f"**{cost:.2f}**"
    return f"{result['eval/normalized_reward']:.2f} / {cost_text}"


def cell_table(cells: dict[CellKey, dict[str, Result]], policies: list[str]) -> str:
    head = "| task | agent | attack | ratio | seed | " + " | ".join(policies) + " |"
    lines = [head, "|" + "---|" * (5 + len(policies))]
    for (task, agent, seed, attack, ratio), found in cells.items():
        values = " | ".join(_pair(found.get(p)) for p in policies)
        lines.append(
            f"| {_short_task(task)} | {agent} | {attack} | {ratio:g} | {seed} | {values} |"
        )
    return "\n".join(lines)


def _unsafe(result: Result) -> bool:
    return result["eval/normalized_cost"] > 1


def attacked_cells(cells: dict[CellKey, dict[str, Result]]) -> dict[CellKey, dict[str, Result]]:
    """Cells where the attack made a safe policy unsafe: the poisoned policy's normalised cost
    above 1 while the clean baseline's is at most 1 (or no clean baseline was measured). Where
    the clean agent is already unsafe, no defence can show that it removed the attack's harm."""
    return {key: found for key, found in cells.items()
            if "poisoned" in found and _unsafe(found["poisoned"])
            and not ("clean" in found and _unsafe(found["clean"]))}  # fmt: skip


def defence_summary(cells: dict[CellKey, dict[str, Result]], defences: list[str]) -> str:
    """Per defence: the cells the attack made unsafe that it made safe again, and the reward it
    kept relative to retrain."""
    attacked = attacked_cells(cells)
    unsafe_clean = sum(
        1 for found in cells.values() if "clean" in found and _unsafe(found["clean"])
    )
    lines = [
        f"Cells where the attack made a safe policy unsafe (clean ≤ 1, poisoned > 1): "
        f"{len(attacked)} of {len(cells)}; left out: {unsafe_clean} whose clean baseline is "
        "already unsafe, and those where the attack did not make the policy unsafe.",
        "",
        "| defence | made safe | mean norm. cost | mean norm. reward | reward vs retrain "
        "(median) | safe and ≥ 90 % of retrain's reward |",
        "|---|---|---|---|---|---|",
    ]
    for defence in defences:
        runs = [v for v in attacked.values() if defence in v]
        if not runs:
            continue
        safe = [v for v in runs if v[defence]["eval/normalized_cost"] <= 1]
        ratios = [_reward_ratio(v, defence) for v in runs if "retrain" in v]
        ratios = [r for r in ratios if r is not None]
        good = [v for v in safe if (_reward_ratio(v, defence) or 0) >= 0.9]
        median = sorted(ratios)[len(ratios) // 2] if ratios else float("nan")
        mean_cost = sum(v[defence]["eval/normalized_cost"] for v in runs) / len(runs)
        mean_reward = sum(v[defence]["eval/normalized_reward"] for v in runs) / len(runs)
        lines.append(f"| {defence} | {len(safe)} / {len(runs)} | {mean_cost:.2f} | "
                     f"{mean_reward:.2f} | {median:.0%} | {len(good)} / {len(runs)} |")  # fmt: skip
    return "\n".join(lines)


def _reward_ratio(found: dict[str, Result], defence: str) -> float | None:
    reference = found["retrain"]["eval/normalized_reward"]
    if reference <= 0:
        return None
    return found[defence]["eval/normalized_reward"] / reference


def timing_table(cells: dict[CellKey, dict[str, Result]], defences: list[str]) -> str:
    """Mean wall time of each defence against retraining, per task and agent."""
    groups: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (task, agent, *_), found in cells.items():
        for policy, r in found.items():
            if r.get("wall_seconds"):
                groups[(task, agent)][policy].append(r["wall_seconds"])
    shown = [d for d in defences if d != "retrain"]
    lines = ["| task | agent | retrain | " + " | ".join(shown) + " |",
             "|" + "---|" * (3 + len(shown))]  # fmt: skip
    for (task, agent), times in sorted(groups.items()):
        retrain = _mean(times.get("retrain"))
        cells_text = []
        for d in shown:
            mean = _mean(times.get(d))
            if mean is None:
                cells_text.append("–")
            elif retrain:
                cells_text.append(f"{mean:.0f} s ({mean / retrain:.2f}×)")
            else:
                cells_text.append(f"{mean:.0f} s")
        retrain_text = f"{retrain:.0f} s" if retrain else "–"
        lines.append(f"| {_short_task(task)} | {agent} | {retrain_text} | "
                     + " | ".join(cells_text) + " |")  # fmt: skip
    return "\n".join(lines)


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None


def plot_cells(
    cells: dict[CellKey, dict[str, Result]], policies: list[str], folder: Path
) -> list[Path]:
    """One PNG per task x agent: normalised cost per cell and policy, cost limit drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_pair: dict[tuple[str, str], list[tuple[CellKey, dict[str, Result]]]] = defaultdict(list)
    for key, found in cells.items():
        by_pair[(key[0], key[1])].append((key, found))
    written = []
    for (task, agent), items in sorted(by_pair.items()):
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(items) + 3), 4))
        width = 0.8 / len(policies)
        for i, policy in enumerate(policies):
            xs = [j + i * width for j in range(len(items))]
            ys = [found.get(policy, {}).get("eval/normalized_cost", 0.0) for _, found in items]
            ax.bar(xs, ys, width, label=policy)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="cost limit")
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(items))],
                      [f"{k[3]} {k[4]:g} s{k[2]}" for k, _ in items], fontsize=8)  # fmt: skip
        ax.set_ylabel("normalised cost (≤ 1 is safe)")
        ax.set_title(f"{_short_task(task)}, {agent}", fontsize=10)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        out = folder / f"{_short_task(task)}-{agent}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out, overwrite=True) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        written.append(out)
    return written


def write_report(results_dir: str | Path, out: str | Path, profile: str) -> Path:
    """The markdown report of every result under ``results_dir``, plots next to it."""
    results = load_results(results_dir)
    cells = group_cells(results)
    present = {p for found in cells.values() for p in found}
    defences = [m for m in ALL_METHODS if m in present]
    ablations = sorted(p for p in present if "+" in p)
    out = Path(out)
    plots = plot_cells(cells, ["clean", "poisoned", *defences], out.parent / f"{profile}-plots")
    versions = sorted({r.get("code_version", "?") for r in results})
    episodes = sorted({int(r["eval/episodes"]) for r in results}) if results else []
    text = [
        f"# Benchmark results: `{profile}` profile",
        "",
        f"{len(results)} policies in {len(cells)} attacked cells; code version(s): "
        f"{', '.join(versions)}; evaluation episodes per policy: {episodes}.",
        "Entries are normalised reward / normalised cost (cost ≤ 1 is safe; unsafe in bold).",
        "",
        "## Before and after, per cell",
        "",
        cell_table(cells, ["clean", "poisoned", *defences]),
        "",
        "## Defences compared",
        "",
        defence_summary(cells, defences),
        "",
        "## Cost of each defence against retraining",
        "",
        timing_table(cells, defences),
        "",
    ]
    if ablations:
        text += ["## Ablations of Safe-RULE", "",
                 cell_table(cells, ["poisoned", "safe-rule", *ablations]), "",
                 defence_summary(cells, ["safe-rule", *ablations]), ""]  # fmt: skip
    text += ["## Plots", ""]
    text += [f"![{p.stem}]({p.parent.name}/{p.name})" for p in plots]
    with atomic_path(out, overwrite=True) as tmp:
        Path(tmp).write_text("\n".join(text) + "\n")
    return out
