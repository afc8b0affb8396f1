"""Report tables and plots: what a reader sees is what was measured."""

import json

import numpy as np
import pytest

from osrl_unlearn.benchmark.report import (
    CellStats,
    attacked_cell_table,
    attacked_runs_table,
    cell_table,
    defence_summary,
    episode_scores,
    pool_seeds,
    removal_table,
    summarise,
    timing_table,
    verdict,
    write_report,
)
from osrl_unlearn.repair import history_csv
from osrl_unlearn.report import (
    markdown_table,
    moving_average,
    plot_policies,
    plot_unlearning,
    read_history_csv,
)
from osrl_unlearn.unlearn import UnlearningHistory


def row(policy, cost, reward=0.5, wall=None, steps=None):
    return {"policy": policy, "eval/normalized_cost": cost, "eval/normalized_cost_std": 0.1,
            "eval/normalized_reward": reward, "eval/normalized_reward_std": 0.05,
            "eval/reward": 100 * reward, "eval/cost": 10 * cost, "wall_seconds": wall,
            "steps": steps}  # fmt: skip


def test_markdown_table_marks_unsafe_policies_and_shows_cost_of_repair():
    table = markdown_table([row("poisoned", 3.2), row("safe-rule", 0.8, wall=12.34, steps=2000)])
    lines = table.splitlines()
    assert lines[2] == "| poisoned | 0.50 ± 0.05 | 3.20 ± 0.10 | 50.0 | 32.0 | **no** |  |  |"
    assert (
        lines[3] == "| safe-rule | 0.50 ± 0.05 | 0.80 ± 0.10 | 50.0 | 8.0 | yes | 12.3 s | 2000 |"
    )


def test_plots_are_png_files(tmp_path):
    bars = plot_policies([row("clean", 0.5), row("poisoned", 2.0)], tmp_path / "bars.png")
    assert bars.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = UnlearningHistory(metrics=[{"unlearn/forget_qc": 1.0, "unlearn/beta_f": 0.1},
                                         {"unlearn/forget_qc": 2.0, "unlearn/beta_f": 0.3}])  # fmt: skip
    path = tmp_path / "history.csv"
    path.write_text(history_csv(history))
    columns = read_history_csv(path)
    assert columns == {"step": [0.0, 1.0], "unlearn/beta_f": [0.1, 0.3],
                       "unlearn/forget_qc": [1.0, 2.0]}  # fmt: skip
    curves = plot_unlearning({"safe-rule": columns}, tmp_path / "curves.png", kappa=1.5)
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_moving_average_is_a_trailing_mean():
    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert moving_average([2.0, 4.0], 5) == [2.0, 3.0]  # fewer values than the window
    assert moving_average([], 3) == []
    with pytest.raises(ValueError, match="window"):
        moving_average([1.0], 0)


def result(policy, seed, costs, rewards, *, agent="a", attack="max-cost", ratio=0.15, **extra):
    """A grid result of task T with its per-episode normalised scores."""
    clean = policy == "clean"
    return {"task": "T", "agent": agent, "attack": None if clean else attack,
            "ratio": None if clean else ratio, "seed": seed, "policy": policy,
            "normalized_costs": list(costs), "normalized_rewards": list(rewards),
            "eval/normalized_cost": float(np.mean(costs)),
            "eval/normalized_reward": float(np.mean(rewards)), "eval/episodes": len(costs),
            "wall_seconds": 10.0, **extra}  # fmt: skip


def seeds(policy, costs, rewards, **kw):
    """The same episodes on seeds 0, 1, 2 (``costs``/``rewards``: one list per seed, or one list
    for all)."""
    if not isinstance(costs[0], list):
        costs = [costs] * 3
    if not isinstance(rewards[0], list):
        rewards = [rewards] * 3
    return [
        result(policy, s, c, r, **kw) for s, (c, r) in enumerate(zip(costs, rewards, strict=False))
    ]


def test_seeds_are_pooled_per_cell_with_the_clean_baseline_attached():
    results = [*seeds("clean", [0.0], [0.5]), *seeds("poisoned", [3.0], [0.6]),
               *seeds("poisoned", [3.0], [0.6], ratio=0.05)]  # fmt: skip
    cells = pool_seeds(results)
    assert list(cells) == [("T", "a", "max-cost", 0.05), ("T", "a", "max-cost", 0.15)]
    assert {p: sorted(runs) for p, runs in cells["T", "a", "max-cost", 0.15].items()} == {
        "poisoned": [0, 1, 2], "clean": [0, 1, 2]}  # fmt: skip


def test_a_policy_is_summarised_over_seeds_then_episodes():
    # seed means 0, 0 and 3.3: mean 1.1. Episodes within a seed are equal, so only the seed draw
    # matters: all three draws seed 2 with probability 1/27 > 2.5 %, none with 8/27
    costs = [[0.0, 0.0], [0.0, 0.0], [3.3, 3.3]]
    runs = dict(enumerate(seeds("x", costs, [0.25, 0.25])))
    summary = summarise(runs)
    assert summary.cost.mean == pytest.approx(1.1)
    assert (summary.cost.low, summary.cost.high) == pytest.approx((0.0, 3.3))
    assert (summary.reward.mean, summary.reward.low, summary.reward.high) == (0.25, 0.25, 0.25)
    assert summary.seeds == (0, 1, 2) and summary.episodes == (2, 2, 2)
    assert not summary.safe and summary.competent is None
    runs[0]["competence_threshold"] = 0.2
    assert summarise(runs).competent is True


def test_safety_is_judged_on_the_mean_over_seeds():
    # two of three seeds safe, but the mean 1.07 is not; one seed unsafe, but the mean 0.97 is
    clean = summarise(dict(enumerate(seeds("clean", [0.0, 0.0], [0.4, 0.6]))))
    unsafe = summarise(dict(enumerate(seeds("d", [[0.5], [0.5], [2.2]], [0.5]))))
    safe = summarise(dict(enumerate(seeds("d", [[0.0], [0.0], [2.9]], [0.5]))))
    assert verdict(unsafe, clean) == "unsafe"
    assert verdict(safe, clean) == "repaired"


def attacked_results():
    """Cell 0.15 is attacked (clean safe, poisoned unsafe); safe-rule repairs it, finetune is
    safe with less reward than the clean agent's lower bound, retrain stays unsafe. Cell 0.05:
    poisoned stays safe. Agent b's clean agent is already unsafe."""
    clean_rewards = [0.4, 0.6, 0.5, 0.5]
    return [
        *seeds("clean", [0.0] * 4, clean_rewards),
        *seeds("poisoned", [5.0, 6.0, 4.0, 5.0], [0.7] * 4),
        *seeds("safe-rule", [0.5, 1.0, 0.0, 0.5], clean_rewards),
        *seeds("finetune", [0.0, 0.5, 0.0, 0.5], [r - 0.4 for r in clean_rewards]),
        *seeds("retrain", [3.0] * 4, clean_rewards),
        *seeds("poisoned", [0.9] * 4, [0.7] * 4, ratio=0.05),
        *seeds("clean", [3.0], [0.5], agent="b"),
        *seeds("poisoned", [6.0], [0.5], agent="b"),
    ]


def test_defence_summary_counts_repairs_and_safety_by_doing_nothing():
    stats = CellStats(pool_seeds(attacked_results()))
    assert stats.attacked() == [("T", "a", "max-cost", 0.15)]
    summary = defence_summary(stats, ["safe-rule", "finetune", "retrain"], "safe-rule")
    assert ("**1 of 3** (T a max-cost 0.15); left out: 1 whose clean baseline is already unsafe, "
            "1 where the poisoned policy stayed safe.") in summary  # fmt: skip
    # columns: made safe, repaired, safe by doing nothing, cost, reward, then against safe-rule
    # on the same episodes the cells whose difference lies below 0 / spans 0 / lies above 0.
    # finetune's cost minus safe-rule's is -0.5, -0.5, 0, 0 in every seed, so the bootstrap
    # mean is -0.5 Bin(12, 1/2) / 12: interval [-0.375, -0.125], below 0; its reward is 0.4 below
    # on every episode. retrain's cost is 2.5 higher on average, its reward the same.
    assert "| safe-rule | 1 / 1 | 1 / 1 | 0 / 1 | 0.50 | 0.50 | – | – |" in summary
    assert "| finetune | 1 / 1 | 0 / 1 | 1 / 1 | 0.25 | 0.10 | 1 / 0 / 0 | 1 / 0 / 0 |" in summary
    assert "| retrain | 0 / 1 | 0 / 1 | 0 / 1 | 3.00 | 0.50 | 0 / 0 / 1 | 0 / 1 / 0 |" in summary


def test_attacked_runs_are_counted_seed_by_seed():
    # agent a: seeds 0-2 clean safe, poisoned unsafe in cell 0.15 (3 runs); agent c: clean safe
    # on seed 2 only (mean 2.0, so no cell of c is attacked), poisoned unsafe on every seed
    results = [
        *attacked_results(),
        *seeds("clean", [[3.0], [3.0], [0.0]], [0.5], agent="c"),
        *seeds("poisoned", [4.0], [0.5], agent="c"),
        *seeds("safe-rule", [[0.0], [0.0], [2.0]], [0.5], agent="c"),
        *seeds("finetune", [[5.0], [5.0], [0.5]], [0.5], agent="c"),
    ]
    stats = CellStats(pool_seeds(results))
    assert stats.attacked() == [("T", "a", "max-cost", 0.15)]
    assert stats.attacked_runs() == [(("T", "a", "max-cost", 0.15), s) for s in (0, 1, 2)] + [
        (("T", "c", "max-cost", 0.15), 2)]  # fmt: skip
    table = attacked_runs_table(stats, ["safe-rule", "finetune", "retrain"])
    lines = table.splitlines()
    assert lines[0] == ("| task | agent | attacked runs (cells × seeds) | safe-rule: safe (mean "
                        "cost) | finetune: safe (mean cost) | retrain: safe (mean cost) |")  # fmt: skip
    # agent a: safe-rule's seed means 0.5 each; finetune 0.25; retrain 3.0
    assert lines[2] == "| T | a | 3 | 3 of 3 (0.50) | 3 of 3 (0.25) | 0 of 3 (3.00) |"
    # agent c seed 2: safe-rule 2.0 (unsafe), finetune 0.5 (safe), retrain not run
    assert lines[3] == "| T | c | 1 | 0 of 1 (2.00) | 1 of 1 (0.50) | – |"
    assert lines[4] == "| all | all | 4 | 3 of 4 (0.88) | 4 of 4 (0.31) | 0 of 3 (3.00) |"
    no_attack = CellStats(pool_seeds([r for r in attacked_results() if r["ratio"] != 0.15]))
    assert attacked_runs_table(no_attack, ["safe-rule"]).startswith("No seed's")


def test_a_policy_measured_on_fewer_seeds_than_its_cell_names_them():
    # the grid repairs only the runs a repair can be judged on: here seed 2 alone
    results = [*seeds("clean", [[3.0], [3.0], [0.0]], [0.5]), *seeds("poisoned", [4.0], [0.5]),
               result("relabel", 2, [0.5], [0.25])]  # fmt: skip
    table = cell_table(CellStats(pool_seeds(results)), ["clean", "poisoned", "relabel"], "cost")
    row = table.splitlines()[2]
    assert row.startswith("| T | a | max-cost | 0.15 | 0, 1, 2 | 1 |")
    assert row.endswith("| 0.50 [0.50, 0.50] (seed 2) |")
    assert "(seed" not in row.split("|")[8]  # poisoned: every seed of the cell


def test_the_timing_table_compares_each_defence_with_retraining_where_the_grid_repaired():
    results = [*seeds("clean", [0.0], [0.5]), *seeds("poisoned", [3.0], [0.5]),
               *seeds("retrain", [0.0], [0.5], wall_seconds=100.0),
               *seeds("relabel", [0.0], [0.5], wall_seconds=20.0),
               *seeds("clean", [3.0], [0.5], agent="b"),
               *seeds("poisoned", [4.0], [0.5], agent="b")]  # fmt: skip
    lines = timing_table(CellStats(pool_seeds(results)), ["relabel", "retrain"]).splitlines()
    assert lines[0] == "| task | agent | retrain | relabel |"
    assert lines[2:] == ["| T | a | 100 s | 20 s (0.20×) |"]  # b: poisoned only, left out


def test_the_removal_table_counts_only_policies_safe_after_their_repair():
    def removal(keep_only, poisoned):
        return {"removal": {"keep_only": {"steps": 2000, "eval/normalized_cost": keep_only},
                            "poisoned": {"steps": 1000, "eval/normalized_cost": poisoned}}}  # fmt: skip

    results = [*seeds("clean", [0.0], [0.5]), *seeds("poisoned", [3.0], [0.5]),
               result("relabel", 0, [0.5], [0.5], **removal(0.0, 4.0)),
               result("relabel", 1, [1.0], [0.5], **removal(3.0, 1.0)),
               result("relabel", 2, [6.0], [0.5], **removal(0.0, 0.0)),  # unsafe: no repair
               result("finetune", 0, [5.0], [0.5], **removal(0.0, 0.0))]  # fmt: skip
    lines = removal_table(CellStats(pool_seeds(results)), ["finetune", "relabel"]).splitlines()
    assert lines[2:] == ["| relabel | 2 | 1.50 (1 of 2; 2000 steps) | 2.50 (1 of 2; 1000 steps) |"]
    only_unsafe = CellStats(pool_seeds(results[:6] + results[8:]))
    assert removal_table(only_unsafe, ["finetune"]).startswith("No policy safe after its repair")


def test_without_attacked_cells_the_comparison_says_so():
    stats = CellStats(pool_seeds([r for r in attacked_results() if r["ratio"] != 0.15]))
    assert stats.attacked() == []
    summary = defence_summary(stats, ["safe-rule"], "safe-rule")
    assert summary.endswith("\n\nNo defence was measured on a cell the attack made unsafe: "
                            "nothing to compare.")  # fmt: skip
    assert attacked_cell_table(stats, ["safe-rule"], "safe-rule").startswith("No defence")


def test_defences_are_compared_on_the_same_episodes():
    stats = CellStats(pool_seeds(attacked_results()))
    key = ("T", "a", "max-cost", 0.15)
    finetune = stats.comparison(key, "finetune", "safe-rule")
    assert (finetune.cost.mean, finetune.cost.low, finetune.cost.high) == (-0.25, -0.375, -0.125)
    # rewards differ by exactly -0.4 on every paired episode: a zero-width interval, although
    # each policy's own reward interval is wide
    assert finetune.reward.mean == pytest.approx(-0.4)
    assert finetune.reward.high - finetune.reward.low == pytest.approx(0.0, abs=1e-12)
    own = stats.summary(key, "finetune").reward
    assert own.high - own.low > 0.05
    clean = stats.summary(key, "clean")
    assert own.mean < clean.reward.low
    table = attacked_cell_table(stats, ["safe-rule", "finetune", "retrain"], "safe-rule")
    assert "| finetune | 0.25 [0.12, 0.38] | " in table
    assert "| safe by doing nothing | -0.25 [-0.38, -0.12] | -0.40 [-0.40, -0.40] |" in table
    needs = f"| {clean.reward.format()} | a repair needs reward ≥ {clean.reward.low:.2f} |"
    assert f"| clean | 0.00 [0.00, 0.00] {needs}" in table
    assert "| retrain | **3.00** [3.00, 3.00] |" in table


def test_episode_scores_are_derived_from_the_raw_returns():
    from osrl_unlearn.tasks import get_task

    spec = get_task("OfflineCarCircle-v0")
    raw = {"task": spec.name, "agent": "a", "seed": 0, "policy": "p",
           "rewards": [spec.min_episode_reward, spec.max_episode_reward], "costs": [0.0, 40.0],
           "settings": {"cost_limit": 20.0}, "eval/normalized_reward": 0.5,
           "eval/normalized_cost": 1.0}  # fmt: skip
    rewards, costs = episode_scores(raw)
    np.testing.assert_allclose(rewards, [0.0, 1.0])
    np.testing.assert_allclose(costs, [0.0, 2.0])
    with pytest.raises(ValueError, match="averages 1, the result says 2"):
        episode_scores({**raw, "eval/normalized_cost": 2.0})
    mean_only = {"eval/normalized_reward": 0.3, "eval/normalized_cost": 4.0}
    assert [a.tolist() for a in episode_scores(mean_only)] == [[0.3], [4.0]]


def test_report_states_its_basis_and_judges_competence(tmp_path):
    results = [*attacked_results(), *seeds("clean", [0.5], [0.3], agent="c")]  # no cell yet
    for r in results:
        if r["policy"] == "clean":
            r["competence_threshold"] = 0.45
        folder = tmp_path / "cells" / r["agent"] / f"seed{r['seed']}" / str(r["ratio"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{r['policy']}.json").write_text(json.dumps(r))
    text = write_report(tmp_path, tmp_path / "out" / "t-rerun.md", "t", resamples=500).read_text()
    assert (
        "**Built from:** 3 seeds in 3 cells; 1–4 evaluation episodes per policy and seed." in text
    )
    assert "| T | a | 0, 1, 2 | 4 | 0.50 [" in text and "| yes | yes (threshold 0.45) |" in text
    assert (
        "| T | b | 0, 1, 2 | 1 | 0.50 [0.50, 0.50] | **3.00** [3.00, 3.00] | **no** | yes " in text
    )
    assert "| T | c | 0, 1, 2 | 1 | 0.30 [0.30, 0.30] | 0.50 [0.50, 0.50] | yes | **no** " in text
    assert "2 of 3 safe (mean normalised cost ≤ 1); 2 of 3 judged are competent" in text
    assert "| T | a | max-cost | 0.15 | 0, 1, 2 | 4 | 0.00 [0.00, 0.00] | **5.00** [" in text
    # plots beside the report, named after it: another folder's report keeps the profile's plots
    assert (tmp_path / "out" / "t-rerun-plots" / "T-a.png").read_bytes()[:4] == b"\x89PNG"
    assert "](t-rerun-plots/T-a.png)" in text


def test_the_timing_table_adds_the_cpu_time_ratio_only_where_every_run_recorded_it():
    def timed(policy, wall, cpu):
        return seeds(policy, [0.0], [0.5], wall_seconds=wall, cpu_seconds=cpu)

    both = [*seeds("clean", [0.0], [0.5]), *seeds("poisoned", [3.0], [0.5]),
            *timed("retrain", 300.0, 100.0), *timed("relabel", 90.0, 15.0)]  # fmt: skip
    lines = timing_table(CellStats(pool_seeds(both)), ["relabel", "retrain"]).splitlines()
    assert lines[2:] == ["| T | a | 300 s | 90 s (0.30×; CPU 0.15×) |"]
    # a retrain cached before CPU time was recorded: wall time only, no partial CPU ratio
    partial = [*both[:-2], *timed("retrain", 300.0, None), both[-1]]
    lines = timing_table(CellStats(pool_seeds(partial)), ["relabel", "retrain"]).splitlines()
    assert lines[2:] == ["| T | a | 300 s | 90 s (0.30×) |"]
