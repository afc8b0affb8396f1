"""The benchmark grid on a tiny profile: every policy measured once, resumable, reported."""

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import pytest

from osrl_unlearn.benchmark.grid import GridConfig, execute, plan, same_config
from osrl_unlearn.benchmark.report import group_cells, load_results, write_report


def tiny_grid(tmp_path, cache, **overrides):
    values = dict(profile="smoke", agents=["cpq"], methods=["safe-rule", "relabel", "retrain"],
                  ablations=["fixed-beta"], results_dir=str(tmp_path / "results"), cache=cache,
                  show_progress=False)  # fmt: skip
    return GridConfig(**{**values, **overrides})


@pytest.mark.slow
def test_grid_measures_every_policy_once_and_resumes(tmp_path, quick_car_circle):
    cache = quick_car_circle[0].cache
    # spawned workers (CI smoke runs inline); every policy gets the removal check
    cfg = tiny_grid(tmp_path, cache, workers=2, removal_for="all")
    jobs = plan(cfg)
    assert [j.attack for j in jobs] == [None, "max-cost"]
    assert jobs[1].policies() == ["poisoned", "safe-rule", "relabel", "retrain",
                                  "safe-rule+fixed-beta"]  # fmt: skip
    assert execute(cfg, jobs) == 6
    assert execute(cfg, plan(cfg)) == 0  # everything on disk: nothing to redo
    cell = jobs[1].folder
    (cell / "relabel.json").unlink()
    assert execute(cfg, plan(cfg)) == 1  # an interrupted run resumes where it stopped
    stale = json.loads((cell / "safe-rule.json").read_text())
    stale["measured_with"]["unlearn_steps"] = 9999  # as if measured under another profile
    (cell / "safe-rule.json").write_text(json.dumps(stale))
    assert execute(cfg, plan(cfg)) == 1  # a result of other settings is measured again
    assert json.loads((cell / "safe-rule.json").read_text())["measured_with"]["unlearn_steps"] == 5
    stale = json.loads((cell / "relabel.json").read_text())
    stale["unlearning_config"]["actor"] = "keep"  # as if measured before the defaults changed
    (cell / "relabel.json").write_text(json.dumps(stale))
    assert execute(cfg, plan(cfg)) == 1  # a result of other repair settings is measured again
    result = json.loads((cell / "retrain.json").read_text())
    assert result["steps"] == 30 and result["wall_seconds"] > 0 and result["cpu_seconds"] > 0
    assert result["unlearning_config"]["learning_rate"] is None  # the agent's own training rates
    clean = json.loads((jobs[0].folder / "clean.json").read_text())
    assert 0 < clean["competence_threshold"] < 1
    # the keep rows are the clean file's, so the retrained agent is the clean one, not trained again
    assert result["retrained_as"] == "clean" and result["costs"] == clean["costs"]
    assert result["rewards"] == clean["rewards"] and result["wall_seconds"] == clean["wall_seconds"]
    assert len(result["rewards"]) == 2 and result["code_version"]
    # the removal check: continued on keep data for a repair's steps, on poisoned data briefly
    removal = json.loads((cell / "relabel.json").read_text())["removal"]
    assert removal["keep_only"]["steps"] == 5 and removal["poisoned"]["steps"] == 3
    # the retrained reference: keep-only for the grid's repair budget, not its 30 training steps
    assert result["removal"]["keep_only"]["steps"] == 5 and result["removal"]["poisoned"]
    # measured once per seed next to the clean run (the same in every cell), and reused
    (saved,) = Path(cache).glob("agents/*/*/keep-only-5-seed0-2.json")
    assert json.loads(saved.read_text()) == result["removal"]["keep_only"]
    assert "eval/normalized_cost" in removal["keep_only"]
    assert json.loads((cell / "relabel.json").read_text())["unlearning_config"]["actor"] == "reset"
    assert "removal" not in json.loads((cell / "safe-rule+fixed-beta.json").read_text())

    cells = group_cells(load_results(tmp_path / "results"))
    ((key, found),) = cells.items()
    assert key == ("OfflineCarCircle-v0", "cpq", 0, "max-cost", 0.15)
    assert set(found) == {"clean", "poisoned", "safe-rule", "relabel", "retrain",
                          "safe-rule+fixed-beta"}  # fmt: skip
    report = write_report(tmp_path / "results", tmp_path / "smoke.md", "smoke").read_text()
    assert "| CarCircle | cpq | max-cost | 0.15 | 0 |" in report
    assert "## Defences compared" in report and "## Ablations of Safe-RULE" in report
    assert "## Removal, not masking" in report
    assert (tmp_path / "smoke-plots" / "CarCircle-cpq.png").is_file()


def test_retraining_trains_again_where_the_keep_rows_are_not_the_clean_file(
    tmp_path, quick_car_circle, poisoned_file
):
    from osrl_unlearn.benchmark.grid import Job, retrained_run
    from osrl_unlearn.data import read_hdf5
    from osrl_unlearn.training import profile_settings

    settings = profile_settings("quick", agent="cpq", steps=5, seed=0)
    job = Job("OfflineCarCircle-v0", "cpq", 0, str(quick_car_circle[1].path), settings, 5, 1,
              str(tmp_path), str(tmp_path / "cache"))  # fmt: skip
    # the fixture flags the clean file's own last episode: its keep rows lack it
    assert retrained_run(job, read_hdf5(poisoned_file)) is None
    assert not (tmp_path / "cache").exists()  # nothing trained for a shortcut not taken


@pytest.mark.slow
def test_only_policies_safe_after_the_repair_get_the_removal_check(
    tmp_path, quick_car_circle, monkeypatch
):
    from osrl_unlearn.benchmark import grid

    cache = quick_car_circle[0].cache
    cfg = tiny_grid(tmp_path, cache, methods=["relabel"], ablations=[])  # inline: one worker
    cell = plan(cfg)[1].folder
    monkeypatch.setattr(grid, "SAFE_COST", -1.0)  # nothing counts as safe: no check
    assert execute(cfg, plan(cfg)) == 3
    assert "removal" not in json.loads((cell / "relabel.json").read_text())
    (cell / "relabel.json").unlink()
    monkeypatch.setattr(grid, "SAFE_COST", float("inf"))  # everything safe: the check runs
    assert execute(cfg, plan(cfg)) == 1
    assert json.loads((cell / "relabel.json").read_text())["removal"]["poisoned"]["steps"] == 3
    from osrl_unlearn.errors import ConfigError

    with pytest.raises(ConfigError, match="removal_for must be one of all, safe"):
        plan(tiny_grid(tmp_path, cache, removal_for="never"))


@pytest.mark.slow
def test_grid_runs_on_a_local_ray_cluster(tmp_path, quick_car_circle):
    ray = pytest.importorskip("ray")
    cfg = tiny_grid(tmp_path, quick_car_circle[0].cache, methods=["safe-rule"], ablations=[],
                    backend="ray")  # fmt: skip
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert execute(cfg, plan(cfg)) == 3
    finally:
        ray.shutdown()
    assert len(load_results(tmp_path / "results")) == 3


def test_unknown_backend_and_profile_are_refused(tmp_path):
    from osrl_unlearn.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        plan(GridConfig(profile="huge"))
    job_free = GridConfig(backend="slurm")
    with pytest.raises(ConfigError, match="backend must be 'local' or 'ray'"):
        from osrl_unlearn.benchmark.grid import Job

        execute(job_free, [Job("t", "cpq", 0, "", None, 1, 1, str(tmp_path), None,
                               attack="max-cost", ratio=0.1)])  # fmt: skip


def test_judgeable_runs_keep_their_defences_and_the_rest_measure_only_the_poisoned_agent(
    tmp_path, monkeypatch
):
    from osrl_unlearn.benchmark import grid
    from osrl_unlearn.benchmark.grid import Job, judgeable
    from osrl_unlearn.errors import ConfigError

    @dataclass
    class Settings:  # what the grid reads of a training profile here
        steps: int = 30
        learning_rate: Optional[float] = None

    def run(agent, seed, attack="max-cost"):
        return Job("OfflineCarCircle-v0", agent, seed, "", Settings(), 5, 2, str(tmp_path),
                   None, attack=attack, ratio=0.15, methods=["relabel", "retrain"],
                   ablations=["fixed-beta"])  # fmt: skip

    def clean(agent, seed, cost, steps=30):
        baseline = replace(run(agent, seed), attack=None, ratio=None)
        baseline.folder.mkdir(parents=True)
        recorded = {
            "eval/normalized_cost": cost,
            "measured_with": replace(baseline, settings=Settings(steps)).measured_with(),
        }
        (baseline.folder / "clean.json").write_text(json.dumps(recorded))

    # unsafe on the mean (2.5): only seed 1, safe on its own, can be an attacked run
    for seed, cost in enumerate([3.0, 0.5, 4.0]):
        clean("cpq", seed, cost)
    # safe on the mean (0.83): every seed counts towards the cell's mean
    for seed, cost in enumerate([2.0, 0.0, 0.5]):
        clean("bcql", seed, cost)
    # seed 2's clean result was measured with other settings: the mean is unknown
    for seed, cost in enumerate([5.0, 6.0, 7.0]):
        clean("bearl", seed, cost, steps=30 if seed < 2 else 99)
    cells = [run(agent, seed) for agent in ("cpq", "bcql", "bearl") for seed in range(3)]
    policies = {(j.agent, j.seed): j.policies() for j in judgeable(cells)}
    defended = ["poisoned", "relabel", "retrain", "safe-rule+fixed-beta"]
    assert policies == {("cpq", 0): ["poisoned"], ("cpq", 1): defended, ("cpq", 2): ["poisoned"],
                        **{("bcql", s): defended for s in range(3)},
                        **{("bearl", s): defended for s in range(3)}}  # fmt: skip

    # execute applies the rule to the cells, after the baselines, and only when asked
    ran = []
    monkeypatch.setattr(grid, "run_job", lambda job: ran.append(job) or len(job.pending()))
    cpq = [run("cpq", seed) for seed in range(3)]
    baselines = [replace(j, attack=None, ratio=None) for j in cpq]
    assert execute(GridConfig(profile="cpu", workers=1), baselines + cpq) == 1 + 4 + 1
    assert execute(GridConfig(profile="cpu", workers=1, defend="all"), baselines + cpq) == 12
    with pytest.raises(ConfigError, match="defend must be one of all, judgeable, got 'some'"):
        execute(GridConfig(profile="cpu", defend="some"), cpq)


def test_each_profile_reads_its_own_dataset_settings():
    from osrl_unlearn.benchmark.grid import dataset_config

    cpu = dataset_config("cpu", "OfflineCarCircle-v0")
    assert cpu.behaviour_source == "controller" and cpu.controller.radii[-1] == 7.5
    large = dataset_config("cpu-large", "OfflineCarCircle-v0")
    assert large.behaviour_source == "ppo" and large.behaviour.steps == 200_000
    point = dataset_config("cpu", "OfflinePointCircle1Gymnasium-v0")
    assert point.behaviour_source == "ppo" and point.episodes == 200
    smoke = dataset_config("smoke", "OfflineCarCircle-v0")
    assert smoke.episodes == 8 and smoke.behaviour.steps == 2_000


def test_a_recorded_config_matches_when_equal_or_lacking_only_fields_that_kept_their_behaviour():
    from dataclasses import asdict

    from osrl_unlearn.unlearn.config import RelabelConfig

    config = RelabelConfig(steps=4000)
    recorded = json.loads(json.dumps(asdict(config)))
    assert same_config(recorded, config)
    without = {k: v for k, v in recorded.items() if k != "cost_to_go"}  # before the field existed
    assert same_config(without, config)  # its default is the behaviour before it
    assert not same_config(without, RelabelConfig(cost_to_go=True))
    older = {k: v for k, v in recorded.items() if k != "forget_cost"}  # measured before the budget
    assert not same_config(older, config)
    assert same_config(older, RelabelConfig(steps=4000, forget_cost="largest-step"))
    assert same_config({**recorded, "training_lr": None}, config)  # a field since moved away
    assert not same_config({**recorded, "actor": "keep"}, config)
    assert not same_config(None, config)


def test_a_defence_runs_its_own_budget_up_to_the_grids_and_retraining_as_long_as_training():
    from osrl_unlearn.unlearn.config import FinetuneConfig, RelabelConfig, SafeRuleConfig
    from osrl_unlearn.unlearn.methods import repair_steps

    assert repair_steps("relabel", RelabelConfig(steps=2000), 4000, 20_000) == 2000
    assert repair_steps("finetune", FinetuneConfig(steps=5000), 4000, 20_000) == 4000
    assert repair_steps("safe-rule", SafeRuleConfig(steps=4000), 4000, 20_000) == 4000
    assert repair_steps("retrain", FinetuneConfig(steps=5000), 4000, 20_000) == 20_000
