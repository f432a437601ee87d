"""Atomic file output: write to a hidden temporary file beside the destination, then move it into place.

Every file mattecli writes (images, videos, weights, checkpoints, configs) goes through
:func:`atomic_output`, and every folder of files written as one result (PNG sequences) through
:func:`atomic_folder`, so an interrupted run never leaves a half-written file under the final name, and an
existing file is never replaced unless the caller asked for it. Only the standard library is used, so
anything may import this module cheaply.

A temporary's name says who owns it: ``.NAME.PID-HOST-RANDOM.partial.EXT`` (``HOST``: six hex digits of
the machine's name). A run killed outright (SIGKILL, a power cut) cannot remove its temporary; the next
run that writes the same output removes the temporaries of that output whose process is gone from this
machine (:func:`remove_stale_temporaries`), so they do not pile up, hidden, for ever.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mattecli.errors import MatteError


@contextmanager
def atomic_output(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds, move it to ``path``.

    The temporary file is hidden, keeps ``path``'s suffix (encoders choose the format by it) and is
    removed if the block raises. Missing parent folders are created. Without ``overwrite``, an existing
    ``path`` is an error, checked before any work is done and again, atomically, at the final move.
    """
    path = Path(path)
    _check_destination(path, overwrite)
    folder = path.parent
    remove_stale_temporaries(path)
    temporary = _create_temporary(folder, path)
    try:
        yield temporary
        if temporary.is_file():
            # Writers that replace the file themselves (safetensors does) leave it 0600; give the result the
            # permissions any new file of the user gets.
            os.chmod(temporary, 0o666 & ~_umask())
        _move_into_place(temporary, path, overwrite)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a hidden, empty folder next to ``path``; when the block succeeds, rename it to ``path``.

    For outputs that are many files (PNG sequences). The folder is removed if the block raises. Without
    ``overwrite`` an existing ``path`` is an error, checked before any work is done and again at the
    rename (which refuses a folder that appeared in the meantime unless it is empty); with it, the old
    one is replaced only after the new one is complete.
    """
    path = Path(path)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise MatteError("exists (use --overwrite)", path)
    remove_stale_temporaries(path, folder=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.parent / f".{path.name[:100]}.{_owner()}-{secrets.token_hex(4)}.partial"
        temporary.mkdir()
    except OSError as error:
        refuse_a_file_in_the_way(path)
        raise MatteError(f"cannot write to this folder ({describe_error(error)})", path.parent) from None
    try:
        yield temporary
        _rename_into_place(temporary, path, overwrite)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _rename_into_place(temporary: Path, path: Path, overwrite: bool) -> None:
    if not overwrite or not (path.exists() or path.is_symlink()):
        try:
            os.rename(temporary, path)  # fails on a file or a non-empty folder: nothing is lost
        except OSError as error:
            if path.exists() or path.is_symlink():
                raise MatteError("exists (use --overwrite)", path) from None
            raise MatteError(f"cannot write ({describe_error(error)})", path) from None
        return
    retired = path.parent / f".{path.name[:100]}.{secrets.token_hex(4)}.old"
    os.replace(path, retired)
    os.replace(temporary, path)
    if retired.is_dir() and not retired.is_symlink():
        shutil.rmtree(retired, ignore_errors=True)
    else:
        retired.unlink(missing_ok=True)


def _check_destination(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise MatteError("is a folder; give a file name to write to", path)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise MatteError("exists (use --overwrite)", path)


def refuse_a_file_in_the_way(path: Path) -> None:
    """``-o photo.jpg/out.png``: the folder to create is an existing file; say so, not 'File exists'."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise MatteError(f"is a file, not a folder: cannot write {path} inside it", parent)
            return


def _create_temporary(folder: Path, path: Path) -> Path:
    """Create an empty, hidden, uniquely named file in ``folder`` (normal permissions via umask)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        refuse_a_file_in_the_way(path)
        raise MatteError(f"cannot create output folder ({describe_error(error)})", folder) from None
    stem = path.stem[:100]
    for _ in range(10):
        temporary = folder / f".{stem}.{_owner()}-{secrets.token_hex(4)}.partial{path.suffix}"
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as error:
            raise MatteError(f"cannot write to this folder ({describe_error(error)})", folder) from None
        os.close(descriptor)
        return temporary
    raise MatteError("cannot create a temporary file in this folder", folder)


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


def _owner() -> str:
    """``PID-HOST`` of this process, for temporary names."""
    return f"{os.getpid()}-{_host_tag()}"


def remove_stale_temporaries(path: str | Path, folder: bool = False) -> list[Path]:
    """Remove the temporaries that runs killed outright left for ``path`` (a file, or with ``folder`` a
    folder output); returns what was removed.

    Only temporaries of this very output, made on this machine, whose process no longer runs are
    removed; a temporary of a run still going (here or on another machine sharing the folder) stays. A
    folder is listed once per process (the temporaries of runs killed later are for the next process).
    """
    path = Path(path)
    if sys.platform == "win32":  # os.kill(pid, 0) is no liveness test there
        return []
    name = path.name[:100] if folder else path.stem[:100]
    end = ".partial" if folder else f".partial{path.suffix}"
    pattern = re.compile(rf"\.{re.escape(name)}\.(\d+)-([0-9a-f]{{6}})-[0-9a-f]{{8}}{re.escape(end)}")
    removed = []
    host = _host_tag()
    partials = _partials_in(path.parent)
    for entry_name in list(partials):
        match = pattern.fullmatch(entry_name)
        if match is None or match.group(2) != host or _process_runs(int(match.group(1))):
            continue
        stale = path.parent / entry_name
        try:
            if folder and stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            elif not folder and not stale.is_dir():
                stale.unlink()
            else:
                continue
        except FileNotFoundError:
            pass
        except OSError:
            continue
        partials.remove(entry_name)
        removed.append(stale)
    return removed


#: Names of the temporaries found in each folder, listed once per process: a batch of thousands of
#: images into one folder must not list the folder again for every image.
_PARTIALS: dict[str, list[str]] = {}


def _partials_in(folder: Path) -> list[str]:
    key = os.path.abspath(folder)
    if key not in _PARTIALS:
        try:
            names = [name for name in os.listdir(folder) if name.startswith(".") and ".partial" in name]
        except OSError:
            return []
        _PARTIALS[key] = names
    return _PARTIALS[key]


def _process_runs(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine and is not a zombie (a killed process whose parent
    has not collected it yet is gone for our purposes)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, as another user's process
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _move_into_place(temporary: Path, path: Path, overwrite: bool) -> None:
    """Publish the finished file. Without overwrite, a hard link refuses to replace a file that
    appeared while we were working; file systems without hard links fall back to check-then-move."""
    try:
        if overwrite:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise MatteError("exists (use --overwrite)", path) from None
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if path.exists():
                raise MatteError("exists (use --overwrite)", path) from None
            os.replace(temporary, path)
            return
        temporary.unlink()
    except MatteError:
        raise
    except OSError as error:
        raise MatteError(f"cannot write ({describe_error(error)})", path) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str, overwrite: bool = True) -> Path:
    """Write a text file atomically (UTF-8)."""
    with atomic_output(path, overwrite=overwrite) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | Path, data: bytes, overwrite: bool = True) -> Path:
    """Write a binary file atomically (encoded images, reports)."""
    with atomic_output(path, overwrite=overwrite) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def describe_error(error: BaseException) -> str:
    """The useful words of an exception, on one line."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
