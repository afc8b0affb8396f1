"""Faults, in real processes: a full disk, a read-only folder, ``kill -9`` during a write and
workers whose parent is killed. Each ends with exit code 2 and one line that names the fault, or
(kill -9) with debris that the next run removes; inputs stay byte-identical.

A full disk is a 64 KiB tmpfs where this machine lets us mount one, else a file size limit
(RLIMIT_FSIZE, SIGXFSZ ignored: writes fail with EFBIG). A read-only folder is a read-only tmpfs,
or a folder without write permission when not running as root.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from osrl_unlearn.io import STAGING, atomic_path, clean_stale
from tests.test_bad_inputs import build_world, tree

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"))


def _mount(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True)  # fmt: skip
    return done.returncode == 0


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, 32 * 1024))


@pytest.fixture
def full_disk(tmp_path):
    """(folder on a nearly full disk, preexec_fn for the command)."""
    folder = tmp_path / "disk"
    if _mount(folder, "size=64k"):
        yield folder, None
        subprocess.run(["umount", str(folder)], check=False)
    else:
        folder.mkdir(exist_ok=True)
        yield folder, _limit_file_size


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "ro"
    if _mount(folder, "ro,size=64k"):
        yield folder
        subprocess.run(["umount", str(folder)], check=False)
    elif os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
    else:
        pytest.skip("root ignores folder permissions and tmpfs cannot be mounted here")


def cli(*args: str, preexec=None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "osrl_unlearn.cli", *args], capture_output=True,
                          text=True, env=env, preexec_fn=preexec, timeout=timeout)  # fmt: skip


def python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=timeout)  # fmt: skip


Q = ["--show_progress", "false"]


def command(kind: str, world: Path, out: Path) -> list[str]:
    return {
        "poison": ["poison", "--dataset", f"{world}/clean.hdf5", "--inject_from",
                   f"{world}/injected.hdf5", "--out", f"{out}/p.hdf5", *Q],
        "unlearn": ["unlearn", "--run", f"{world}/run", "--dataset", f"{world}/poisoned.hdf5",
                    "--steps", "1", "--batch_size", "8", "--out", f"{out}/repaired",
                    "--eval_episodes", "0", *Q],
        "train": ["train", "--dataset", f"{world}/clean.hdf5", "--profile", "quick", "--steps",
                  "1", "--out", f"{out}/runs", "--eval_episodes", "0", *Q],
    }[kind]  # fmt: skip


def assert_one_line(done: subprocess.CompletedProcess, *words: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("kind", ["poison", "unlearn", "train"])
def test_full_disk_says_no_space_left_and_leaves_nothing(kind, world, full_disk):
    folder, preexec = full_disk
    before = tree(world)
    done = cli(*command(kind, world, folder / "out"), preexec=preexec)
    assert_one_line(done, "no space left on", str(folder / "out"))
    assert list(folder.iterdir()) == []  # no output, no staging file, no empty folder
    assert tree(world) == before


@pytest.mark.parametrize("kind", ["poison", "unlearn"])
def test_read_only_folder_says_cannot_write_and_leaves_nothing(kind, world, read_only):
    before = tree(world)
    done = cli(*command(kind, world, read_only))
    assert_one_line(done, "cannot write", str(read_only))
    assert list(read_only.iterdir()) == []
    assert tree(world) == before


def test_poison_killed_mid_write_leaves_a_staging_file_the_rerun_removes(world, tmp_path):
    out = tmp_path / "out"
    args = command("poison", world, out)
    killed = python(f"""
        import os, signal
        import osrl_unlearn.data.hdf5 as hdf5
        from osrl_unlearn.cli import main
        from osrl_unlearn.io import atomic_path

        def write_half_then_die(path, data, overwrite=False):
            with atomic_path(path, overwrite=overwrite) as tmp:
                with open(tmp, "wb") as handle:
                    handle.write(data[: len(data) // 2])
                    handle.flush()
                    os.kill(os.getpid(), signal.SIGKILL)

        hdf5.write_bytes = write_half_then_die
        main({args!r})
    """)
    assert killed.returncode == -signal.SIGKILL
    stale = list(out.glob(f".p.hdf5.{STAGING}-*"))
    assert len(stale) == 1 and not (out / "p.hdf5").exists()  # what kill -9 leaves
    before = tree(world)
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["p.hdf5"]  # the stale file is gone
    assert tree(world) == before


def test_train_killed_mid_run_leaves_a_staging_folder_the_rerun_removes(world, tmp_path):
    out = tmp_path / "runs"
    args = command("train", world, tmp_path)
    killed = python(f"""
        import os, signal
        from pathlib import Path
        import osrl_unlearn.training as training
        from osrl_unlearn.cli import main

        def train_then_die(data, settings, parent, name, show_progress):
            (Path(parent) / name / "checkpoint").mkdir(parents=True)
            (Path(parent) / name / "config.yaml").write_text("task: x")
            os.kill(os.getpid(), signal.SIGKILL)

        training.train_agent = train_then_die
        main({args!r})
    """)
    assert killed.returncode == -signal.SIGKILL
    assert len(list(out.glob(f".bcql-quick-seed0.{STAGING}-*"))) == 1
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["bcql-quick-seed0"]
    assert (out / "bcql-quick-seed0" / "checkpoint" / "model.pt").is_file()


def sleep_job(pid_file: str, progress) -> None:
    """A worker job that says who it is, then outlives any test."""
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(300)


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_workers_die_when_their_parent_is_killed(tmp_path):
    import psutil

    pid_files = [str(tmp_path / f"worker{i}.pid") for i in range(2)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = (
        "from osrl_unlearn.parallel import run_jobs\n"
        "from tests.test_bad_inputs_faults import sleep_job\n"
        f"run_jobs(sleep_job, {pid_files!r}, workers=2, total=2, desc='x', show_progress=False)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not all(Path(f).is_file() and Path(f).read_text() for f in pid_files):
            assert parent.poll() is None, parent.stderr.read().decode()
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.2)
        children = [p.pid for p in psutil.Process(parent.pid).children(recursive=True)]
        workers = [int(Path(f).read_text()) for f in pid_files]
        assert set(workers) <= set(children) and len(children) >= 3  # + the progress manager
        parent.send_signal(signal.SIGKILL)  # kill -9
        parent.wait(timeout=30)
        deadline = time.monotonic() + 20
        while not all(_gone(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in children if not _gone(pid)] == []
    finally:  # on failure, end the processes this test started (by their ids)
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=30)
        for pid in children:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_stale_staging_of_dead_processes_is_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "data.hdf5"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    stale_file = tmp_path / f".data.hdf5.{STAGING}-{dead}-abc.tmp"
    stale_dir = tmp_path / f".data.hdf5.{STAGING}-{dead}-def"
    live = tmp_path / f".data.hdf5.{STAGING}-{os.getppid()}-ghi.tmp"  # a running process's
    other = tmp_path / f".other.hdf5.{STAGING}-{dead}-jkl.tmp"  # another output's
    stale_file.write_bytes(b"half")
    stale_dir.mkdir()
    (stale_dir / "model.pt").write_bytes(b"half")
    live.write_bytes(b"in progress")
    other.write_bytes(b"not ours")
    assert sorted(clean_stale(target)) == sorted([stale_file, stale_dir])
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["data.hdf5", live.name, other.name]
    )
