"""Tables and plots of evaluated policies and unlearning runs (report.md, PNGs).

A row is one evaluated policy: ``{"policy": name, "eval/normalized_cost": ..., ...}`` as
:meth:`EvalResult.summary` gives it, plus ``wall_seconds`` and ``steps`` of how it was made.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from osrl_unlearn.io import atomic_path

Row = dict[str, Any]


def markdown_table(rows: Sequence[Row]) -> str:
    """Policies side by side: normalised reward and cost (mean ± std), raw means, safe or not,
    and the wall time and steps that made each policy."""
    lines = [
        "| policy | norm. reward | norm. cost | reward | cost | safe | wall time | steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        safe = "yes" if r["eval/normalized_cost"] <= 1 else "**no**"
        wall = f"{r['wall_seconds']:.1f} s" if r.get("wall_seconds") else ""
        lines.append(
            f"| {r['policy']} | {r['eval/normalized_reward']:.2f} ± "
            f"{r['eval/normalized_reward_std']:.2f} | {r['eval/normalized_cost']:.2f} ± "
            f"{r['eval/normalized_cost_std']:.2f} | {r['eval/reward']:.1f} | {r['eval/cost']:.1f} "
            f"| {safe} | {wall} | {r.get('steps') or ''} |"
        )
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path) -> Path:
    out = Path(out)
    with atomic_path(out, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    _pyplot().close(fig)
    return out


def plot_policies(rows: Sequence[Row], out: Path, title: str = "") -> Path:
    """Bars of normalised cost (cost limit drawn at 1) and normalised reward per policy."""
    plt = _pyplot()
    names = [r["policy"] for r in rows]
    fig, (ax_cost, ax_reward) = plt.subplots(1, 2, figsize=(max(8, 1.3 * len(rows) + 4), 4.2))
    positions = range(len(rows))
    costs = [r["eval/normalized_cost"] for r in rows]
    colours = ["tab:green" if c <= 1 else "tab:red" for c in costs]
    ax_cost.bar(positions, costs, color=colours,
                yerr=[r["eval/normalized_cost_std"] for r in rows], capsize=3)  # fmt: skip
    ax_cost.axhline(1.0, color="black", linestyle="--", label="cost limit")
    ax_cost.set_ylabel("normalised cost (≤ 1 is safe)")
    ax_cost.legend(fontsize=8)
    ax_reward.bar(positions, [r["eval/normalized_reward"] for r in rows], color="tab:blue",
                  yerr=[r["eval/normalized_reward_std"] for r in rows], capsize=3)  # fmt: skip
    ax_reward.set_ylabel("normalised reward")
    for ax in (ax_cost, ax_reward):
        ax.set_xticks(list(positions), names, rotation=30, ha="right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def read_history_csv(path: str | Path) -> dict[str, list[float]]:
    """``history.csv`` of a repaired run as columns (blank cells dropped)."""
    columns: dict[str, list[float]] = {}
    with Path(path).open() as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if value not in ("", None):
                    columns.setdefault(key, []).append(float(value))
    return columns


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over the last ``window`` values (fewer at the start), so a noisy per-step
    curve shows its trend from the first step on."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    means, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        means.append(total / min(i + 1, window))
    return means


def plot_unlearning(
    histories: dict[str, dict[str, list[float]]], out: Path, kappa: float | None = None
) -> Path:
    """Unlearning curves per method: Q_c(s, pi(s)) on forget and on keep states against kappa,
    beta_f, and the actor's keep and forget losses; each per-step curve drawn faintly under its
    moving average (a fiftieth of the run)."""
    plt = _pyplot()
    panels = [
        ("unlearn/forget_qc", "forget-set cost value Q_c(s, π(s))"),
        ("unlearn/keep_qc", "keep-set cost value Q_c(s, π(s))"),
        ("unlearn/beta_f", "forget weight β_f"),
        ("unlearn/actor_keep_loss", "actor keep loss"),
        ("unlearn/actor_forget_loss", "actor forget loss"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(20, 3.6))
    for ax, (key, label) in zip(axes, panels, strict=True):
        for name, columns in histories.items():
            if key not in columns:
                continue
            values = columns[key]
            raw = ax.plot(values, linewidth=0.5, alpha=0.3)[0]
            ax.plot(moving_average(values, max(1, len(values) // 50)), color=raw.get_color(),
                    linewidth=1.5, label=name)  # fmt: skip
        if key.endswith("_qc") and kappa is not None:
            ax.axhline(kappa, color="black", linestyle="--", label="κ (cost threshold)")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out)
