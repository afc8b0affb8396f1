"""Report tables and plots: what a reader sees is what was measured."""

import pytest

from osrl_unlearn.benchmark.report import attacked_cells, defence_summary
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


def test_defence_summary_counts_only_cells_the_attack_made_unsafe():
    def result(cost, reward=0.2):
        return {"eval/normalized_cost": cost, "eval/normalized_reward": reward}

    cells = {
        # the attack made it unsafe: counted; safe-rule repairs it with 0.2 / 0.25 of retrain's reward
        ("T", "a", 0, "max-cost", 0.15): {"clean": result(0.0), "poisoned": result(5.0),
                                          "safe-rule": result(0.5), "retrain": result(0.0, 0.25)},
        # clean already unsafe: left out
        ("T", "b", 0, "max-cost", 0.15): {"clean": result(3.0), "poisoned": result(6.0),
                                          "safe-rule": result(0.1), "retrain": result(0.1)},
        # the attack did not make it unsafe: left out
        ("T", "c", 0, "max-cost", 0.15): {"clean": result(0.0), "poisoned": result(0.9),
                                          "safe-rule": result(4.0), "retrain": result(0.0)},
    }  # fmt: skip
    assert list(attacked_cells(cells)) == [("T", "a", 0, "max-cost", 0.15)]
    summary = defence_summary(cells, ["safe-rule"])
    assert "1 of 3; left out: 1 whose clean baseline is already unsafe" in summary
    assert "| safe-rule | 1 / 1 | 0.50 | 0.20 | 80% | 0 / 1 |" in summary
