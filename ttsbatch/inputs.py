"""Reading a user's input file: regular files only, refused at once otherwise.

A named pipe opened for reading waits for a writer, forever; a socket or a
device is not a book. Each is refused with a message naming it before a
byte is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ttsbatch.errors import InputError


def read_input(path: Path) -> bytes:
    """Return the bytes of the regular file at ``path``.

    Raises:
        InputError: When it is missing, unreadable, a directory, a FIFO, a
            socket or a device.
    """
    try:
        _check_regular(path, path.stat().st_mode)
        # Without blocking: should it have become a FIFO since, opening would not wait.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        _check_regular(path, os.fstat(descriptor).st_mode)
    except InputError:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb") as file:
        try:
            return file.read()
        except OSError as error:
            raise InputError(f"{path}: cannot be read ({error.strerror})") from None


def _check_regular(path: Path, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory; give a file")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: is {_kind(mode)}, not a regular file; give a file")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
