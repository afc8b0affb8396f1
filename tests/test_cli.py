import pytest

from osrl_unlearn.cli import main


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "make-dataset" in out and "demo" in out


def undocumented_options(help_text: str) -> list[str]:
    """The options of an argparse ``--help`` text printed without a description."""
    lines = help_text.splitlines()
    missing = []
    for i, line in enumerate(lines):
        words = line.split()
        if not line.startswith("  --") or len(words) > 2 and "  " in line.strip():
            continue  # not an option line, or its description starts on the same line
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if not following.startswith(" " * 8) or following.strip().startswith("--"):
            missing.append(words[0])
    return missing


@pytest.mark.parametrize("command", ["make-dataset", "poison", "train", "unlearn", "evaluate",
                                     "report", "demo"])  # fmt: skip
def test_every_option_has_help_text(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert undocumented_options(out) == []


def test_undocumented_options_are_found():
    text = (
        "  --a int   \n  --b float\n                        B's help. (default: 1)\n"
        "  --c str               C's help (default: x)\n  --d str\n"
    )
    assert undocumented_options(text) == ["--a", "--d"]


def test_unknown_command_exits_2(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_user_mistake_is_one_line_not_a_traceback(capsys):
    assert main(["make-dataset", "--task", "OfflineNope-v0", "--show_progress", "false"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown task 'OfflineNope-v0'")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_setting_exits_2(capsys):
    assert main(["make-dataset", "--episodes", "0"]) == 2
    assert "episodes must be positive" in capsys.readouterr().err


def test_benchmark_scripts_end_bad_input_in_one_line_and_exit_code_2(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for args, expected in [
        (["--profile", "huge"], "error: unknown profile 'huge'; expected one of smoke, cpu, "),
        (["--defend", "some"], "error: defend must be one of all, judgeable, got 'some'"),
    ]:
        done = subprocess.run([sys.executable, str(root / "benchmarks" / "run.py"), *args,
                               "--cache", str(tmp_path)], capture_output=True, text=True,
                              cwd=tmp_path, timeout=300)  # fmt: skip
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and lines[0].startswith(expected), done.stderr
        assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # refused before any data was made


def test_a_scripts_bug_still_shows_its_traceback():
    from osrl_unlearn.cli import run_script
    from osrl_unlearn.demo import DemoConfig

    def broken(cfg):
        raise RuntimeError("a bug, not a user's mistake")

    with pytest.raises(RuntimeError, match="a bug"):
        run_script(broken, DemoConfig, [])


@pytest.mark.slow
def test_quick_demo_tells_the_whole_story(capsys, tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--quick", "true", "--show_progress", "false", "--cache", str(tmp_path),
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2400 transitions in 8 episodes" in printed
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert step in printed
    report = (out / "report.md").read_text()
    for policy in ("clean", "poisoned", "safe-rule", "finetune"):
        assert f"| {policy} |" in report
        assert (out / policy / "checkpoint" / "model.pt").is_file()
    assert (out / "policies.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "unlearning.png").read_bytes()[:4] == b"\x89PNG"
    assert main(args) == 2  # the output folder exists: refused without --force
    assert "exists; pass --force" in capsys.readouterr().err


def test_every_make_dataset_option_parses_from_flags():
    import pyrallis

    from osrl_unlearn.generate.make_dataset import MakeDatasetConfig

    cfg = pyrallis.parse(
        config_class=MakeDatasetConfig,
        args=[
            "--task", "OfflinePointCircle1Gymnasium-v0",
            "--action_noise", "[0.1, 0.5]",
            "--behaviour.cost_limits", "[5, null]",
            "--behaviour.hidden_sizes", "[32]",
            "--behaviour.max_grad_norm", "null",
            "--out", "x.hdf5",
            "--cache", "/tmp/c",
        ],
    )  # fmt: skip
    assert cfg.task == "OfflinePointCircle1Gymnasium-v0" and cfg.action_noise == [0.1, 0.5]
    assert cfg.behaviour.cost_limits == [5.0, None] and cfg.behaviour.hidden_sizes == [32]
    assert cfg.behaviour.max_grad_norm is None
    assert cfg.out == "x.hdf5" and cfg.cache == "/tmp/c"


def test_shipped_dataset_configs_parse_and_car_circle_is_the_default():
    from pathlib import Path

    import pyrallis

    from osrl_unlearn.generate.make_dataset import MakeDatasetConfig

    folder = Path(__file__).resolve().parents[1] / "configs" / "make_dataset"
    car = pyrallis.parse(MakeDatasetConfig, config_path=str(folder / "car_circle.yaml"), args=[])
    assert car.cache_settings() == MakeDatasetConfig().cache_settings()
    point = pyrallis.parse(
        MakeDatasetConfig, config_path=str(folder / "point_circle1.yaml"), args=[]
    )
    assert point.task == "OfflinePointCircle1Gymnasium-v0" and point.behaviour.training_envs == 2
