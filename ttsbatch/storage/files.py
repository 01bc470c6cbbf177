"""Writing local files atomically: a temp file beside the target, then a rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ttsbatch.errors import (
    ObjectNotFoundError,
    StorageError,
    StoreAccessError,
    TransientStorageError,
)


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file under the current umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


@contextlib.contextmanager
def temp_beside(target: Path, *, key: str | None = None) -> Iterator[tuple[BinaryIO, Path]]:
    """Yield an open temp file in ``target``'s folder and its path.

    The caller renames or links the temp file into place before the block
    ends; whatever is left is removed. Readers of ``target`` thus never see a
    half-written file.

    Raises:
        StorageError: if the folder cannot be created or written.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    except OSError as exc:
        raise os_error(str(target), exc, key) from exc
    tmp = Path(name)
    os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; outputs are the user's files
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, tmp
    except OSError as exc:
        raise os_error(str(target), exc, key) from exc
    finally:
        tmp.unlink(missing_ok=True)


def os_error(where: str, exc: OSError, key: str | None) -> StorageError:
    """Return the StorageError for a failed file operation on ``where``.

    A missing file is a missing object and a refused permission a setting to
    fix; anything else (a full disk, an I/O error on a network mount) may pass.
    """
    kind: type[StorageError] = TransientStorageError
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        kind = ObjectNotFoundError
    elif isinstance(exc, PermissionError):
        kind = StoreAccessError
    return kind(f"{where}: {exc.strerror or exc}", key=key)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to the file descriptor ``fd`` (``os.write`` may take less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
