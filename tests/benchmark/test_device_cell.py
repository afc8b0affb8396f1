"""``benchmarks/device_cell.py`` end to end on the CPU, as its three stages run (the GPU machine
runs the same train stage with CUDA graphs): the cell it prepares holds the library's batch fields
and poison mask, the train stage checks our step against OSRL's and writes policies at every
budget, and the evaluate stage turns them into result files and a table."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from osrl_unlearn.data import BatchSampler, layout_for, read_hdf5

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ["relabel", "relabel+keep-constraint", "relabel+shrink-perturb", "relabel+actor-keep",
            "finetune"]  # fmt: skip


def stage(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "benchmarks" / "device_cell.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_prepare_train_evaluate_on_the_cpu(quick_car_circle, poisoned_file, tmp_path):
    cell, out, results = tmp_path / "device" / "cell", tmp_path / "out", tmp_path / "results"
    clean_path = str(quick_car_circle[1].path)
    common = ["--cell", str(cell), "--profile", "quick", "--seeds", "[0]", "--steps", "8"]
    stage("--stage", "prepare", *common, "--clean", clean_path, "--poisoned", f"[{poisoned_file}]")

    meta = json.loads((cell / "cell.json").read_text())
    poisoned = read_hdf5(poisoned_file)
    with np.load(cell / "poisoned-seed0.npz") as arrays:
        assert np.array_equal(arrays["mask"], poisoned.poison_mask.astype(bool))
        fields = BatchSampler(poisoned, 128, layout=layout_for("bcql"), reward_scale=0.1).fields
        for i, field in enumerate(fields):  # the library's fields, at OSRL's reward scale
            assert np.array_equal(arrays[f"arr_{i}"], field.numpy())
    seed = meta["seeds"]["0"]
    assert seed["relabel"]["cost"] == seed["config"]["cost_limit"]  # the episode budget
    assert seed["relabel"]["forget_rows"] == round(128 * 300 / len(poisoned))
    assert not seed["keep_is_clean"]  # the flagged episode was part of the clean file
    assert (tmp_path / "device" / "site" / "fsrl" / "utils" / "__init__.py").is_file()

    stage("--stage", "train", *common, "--device", "cpu", "--out", str(out), "--repair_steps",
          "[3, 5]", "--speed_steps", "1", "--repair_variants", f"[{', '.join(VARIANTS)}]")  # fmt: skip
    log = json.loads((out / "log.json").read_text())
    assert log["osrl_vs_ours_max_abs"] < 1e-5 and log["graph_vs_eager_max_abs"] == 0
    assert log["initial_checksum_matches"] == {"0": True} and log["trained_steps"] == 8
    trained = torch.load(out / "states-seed0.pt", weights_only=True)
    repaired = {**torch.load(out / "policies-repaired-3.pt", weights_only=True),
                **torch.load(out / "policies-repaired-5.pt", weights_only=True)}  # fmt: skip
    assert set(trained) == {"clean", "poisoned"}
    assert "cost_critic_old.q1_nets.0.0.weight" in trained["poisoned"]  # whole agents
    assert set(repaired) == {f"{v}-{n}-seed0" for v in VARIANTS for n in (3, 5)}
    assert all(k.startswith(("actor.", "vae.")) for k in repaired["relabel-3-seed0"])
    # the repair reset the actor and trained it on: its weights differ from the poisoned one's
    key = "actor.pi.0.weight"
    assert not torch.equal(repaired["relabel-5-seed0"][key], trained["poisoned"][key])
    assert not torch.equal(repaired["relabel-5-seed0"][key], repaired["relabel-3-seed0"][key])
    # every variant starts elsewhere or sees other rows: five policies
    policies = [repaired[f"{v}-5-seed0"][key] for v in VARIANTS]
    assert all(not torch.equal(a, b) for i, a in enumerate(policies) for b in policies[i + 1 :])

    stage("--stage", "evaluate", *common, "--trained", f"[{out}]", "--results_dir", str(results),
          "--episodes", "1")  # fmt: skip
    cell_dir = results / "OfflineCarCircle-v0" / "bcql" / "max-cost-0.15" / "seed0"
    payloads = {p.stem: json.loads(p.read_text()) for p in cell_dir.glob("*.json")}
    assert set(payloads) == {"clean", "poisoned"} | {f"{v}-{n}" for v in VARIANTS for n in (3, 5)}
    assert payloads["relabel-5"]["steps"] == 5 and payloads["clean"]["steps"] == 8
    assert payloads["clean"]["whole_agent"] and not payloads["relabel-5"]["whole_agent"]
    assert len(payloads["poisoned"]["costs"]) == 1
    table = Path(f"{results}.md").read_text()
    assert table.count("\n| ") == 13  # header, clean, poisoned and ten repaired policies
