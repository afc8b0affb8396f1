"""Errors that mean "the user asked for something we cannot do", reported without a traceback.

Every such error ends the command line with exit code 2 and one line: what is wrong, and a fix
that exists (a flag the command takes, a file to make, a setting to change).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class UserError(ValueError):
    """Bad input or settings; the message names the problem and the fix."""


class ConfigError(UserError):
    """A setting out of its valid range."""


class OutputError(UserError):
    """An output could not be written (a full disk, a folder without write permission)."""


NO_SPACE = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
NO_ACCESS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def describe_yaml_error(exc: Exception) -> str:
    """Where and what a YAML parse error is, in one line (``line 3: found ...``)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return where + (getattr(exc, "problem", None) or str(exc).splitlines()[0])


def read_yaml(path: str | os.PathLike, error: type[Exception], label: str, invalid_fix: str,
              unreadable_fix: str) -> object:  # fmt: skip
    """The YAML content of ``path``; a file that is not valid YAML or cannot be read raises
    ``error`` as ``<label>: <what is wrong>; <fix>.``"""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise error(
            f"{label}: not valid YAML ({describe_yaml_error(exc)}); {invalid_fix}."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{label}: cannot be read ({exc}); {unreadable_fix}.") from None


def mount_point(path: str | os.PathLike) -> Path:
    """The mount point of the file system ``path`` lies on (of its closest existing parent)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def describe_os_error(exc: OSError, target: str | os.PathLike | None = None) -> str | None:
    """One line for a write that failed for want of space or permission; None for other errors.

    Args:
        exc: the error.
        target: the output being written, named when ``exc`` carries no file name (a failed
            ``write`` does not).
    """
    name = target if target is not None else exc.filename
    if exc.errno in NO_SPACE:
        where = mount_point(name) if name is not None else "the disk"
        limit = " (file size limit reached)" if exc.errno == errno.EFBIG else ""
        return (
            f"no space left on {where}{limit} while writing {name}; free some space there or "
            "write the output to another disk (--out)."
        )
    if exc.errno in NO_ACCESS:
        reason = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
        return (
            f"cannot write {name}: {reason}; choose a folder you can write to (--out) or fix "
            "its permissions."
        )
    return None


def output_error(exc: OSError, target: str | os.PathLike | None = None) -> OSError | OutputError:
    """``exc`` as an :class:`OutputError` when it is a full disk or a refused write, else as is."""
    message = describe_os_error(exc, target)
    return exc if message is None else OutputError(message)


def find_user_error(exc: BaseException) -> UserError | None:
    """The first :class:`UserError` in ``exc``'s chain of causes (libraries wrap ours)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
