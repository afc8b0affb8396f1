"""File helpers: atomic writes (nothing half-written, nothing overwritten by accident) and hashes.

Outputs are staged next to their destination under a name that says who made them,
``.<name>.osrl-staging-<pid>-<random>``, and renamed into place only when complete. A process
killed with ``kill -9`` cannot clean up; the next write to the same destination removes the
staging files and folders whose process is gone. A failed write leaves nothing behind, not even
the parent folders it created, and a full disk or a refused write becomes an
:class:`~osrl_unlearn.errors.OutputError` that names it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osrl_unlearn.errors import describe_os_error, output_error

TORCH_WRITE_FAILED = re.compile(r"unexpected pos \d+ vs \d+|PytorchStreamWriter failed writing")
"""What torch's checkpoint writer says when a write fails: it drops the errno (a full disk)."""
STAGING = "osrl-staging"
_STAGING_NAME = re.compile(rf"\.{STAGING}-(?P<pid>\d+)-[^/]*$")


def staging_prefix(path: Path) -> str:
    """Name prefix of the staging files and folders of ``path`` made by this process."""
    return f".{path.name}.{STAGING}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale(path: str | os.PathLike) -> list[Path]:
    """Removes the staging files and folders of ``path`` left by processes that are gone.

    Returns:
        what was removed.
    """
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.glob(f".{glob_escape(path.name)}.{STAGING}-*"):
        match = _STAGING_NAME.search(candidate.name)
        if match is None or _alive(int(match["pid"])):
            continue
        if candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


@contextlib.contextmanager
def made_dirs(folder: str | os.PathLike) -> Iterator[Path]:
    """Creates ``folder`` and its missing parents; if the block fails, removes the ones it
    created again (when empty), so a failed command leaves no empty output folder."""
    folder = Path(folder)
    created = []
    probe = Path(os.path.abspath(folder))
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(created)
        raise output_error(exc, exc.filename or folder) from exc
    try:
        yield folder
    except BaseException:
        _remove_empty(created)
        raise


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            break


@contextlib.contextmanager
def _as_output_errors(target: Path, *staged: Path) -> Iterator[None]:
    """Turns a full disk or a refused write while producing ``target`` into an OutputError."""
    try:
        yield
    except RuntimeError as exc:
        if TORCH_WRITE_FAILED.search(str(exc)):  # torch.save on a full disk (or over the limit)
            raise output_error(OSError(errno.ENOSPC, "No space left on device"), target) from exc
        raise
    except OSError as exc:
        if describe_os_error(exc) is None:
            raise
        if exc.filename is not None:
            name = Path(os.path.abspath(exc.filename))
            mine = [Path(os.path.abspath(p)) for p in (target, target.parent, *staged)]
            staging = name.parent == mine[1] and name.name.startswith(f".{target.name}.{STAGING}")
            inside = any(p in name.parents for p in mine[2:])
            if not (staging or inside or name in mine):
                raise  # another file (an input, say): the caller's handler names it
        raise output_error(exc, target) from exc


@contextlib.contextmanager
def _staging_site(path: Path, overwrite: bool) -> Iterator[None]:
    """Where an atomic output of ``path`` is staged: refuses an existing ``path`` unless
    ``overwrite``, makes the folder (removed again if the output fails and it was new) and clears
    stale staging leftovers of earlier killed runs."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another output path or allow overwriting.")
    with made_dirs(path.parent):
        clean_stale(path)
        yield


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yields a staging path next to ``path``; renames it onto ``path`` only on success.

    Args:
        path: the final destination.
        overwrite: replace an existing file; without it an existing ``path`` raises FileExistsError.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        OutputError: the disk is full or the folder cannot be written.
    """
    path = Path(path)
    with _staging_site(path, overwrite):
        with _as_output_errors(path):
            fd, tmp_name = tempfile.mkstemp(
                prefix=staging_prefix(path), suffix=".tmp", dir=path.parent
            )
        os.close(fd)
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would outlive the rename
        try:
            with _as_output_errors(path, tmp):
                yield tmp
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_path`), flushed to disk."""
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return path


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Writes ``payload`` as indented JSON to ``path`` atomically, replacing an older file and
    making its folder: a killed run leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes(path, json.dumps(payload, indent=1).encode(), overwrite=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yields an empty staging folder next to ``path``; on success it replaces ``path``.

    The old folder (with ``overwrite``) goes only once the new one is complete.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        OutputError: the disk is full or the folder cannot be written.
    """
    path = Path(path)
    with _staging_site(path, overwrite):
        with _as_output_errors(path):
            tmp = Path(tempfile.mkdtemp(prefix=staging_prefix(path), dir=path.parent))
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would outlive the rename
        try:
            with _as_output_errors(path, tmp):
                yield tmp
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
                os.rename(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class WrittenFile:
    """A file a command produced, and the summary it printed about it."""

    path: Path
    summary: dict
