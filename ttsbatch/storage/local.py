"""The store as a local folder: keys are relative paths below a root directory."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ttsbatch.errors import StorageError
from ttsbatch.storage.files import temp_beside


class LocalStore:
    """Objects as files under ``root``; writes go through a temp file and a rename."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        # A lexical check: resolve() costs a syscall per path component per call.
        parts = key.split("/")
        if key.startswith("/") or ".." in parts or "\\" in key:
            raise StorageError(f"key {key!r} escapes the store root", key=key)
        return self.root.joinpath(*(part for part in parts if part not in {"", "."}))

    def exists(self, key: str) -> bool:
        """Return whether a file exists at ``key``."""
        return self._path(key).is_file()

    def read(self, key: str) -> bytes:
        """Return the bytes at ``key``."""
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"{self.url}/{key}: {exc.strerror or exc}", key=key) from exc

    def write(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        """Write ``data`` atomically; with ``if_absent`` only if ``key`` is free."""
        with self._staged(key) as (handle, tmp):
            handle.write(data)
            handle.flush()
            return self._commit(tmp, self._path(key), if_absent=if_absent)

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        """Open ``key`` for reading."""
        try:
            handle = self._path(key).open("rb")
        except OSError as exc:
            raise StorageError(f"{self.url}/{key}: {exc.strerror or exc}", key=key) from exc
        with handle:
            yield handle

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        """Stream into ``key``; the file appears when the block exits cleanly."""
        with self._staged(key) as (handle, tmp):
            yield handle
            handle.flush()
            self._commit(tmp, self._path(key), if_absent=False)

    def size(self, key: str) -> int:
        """Return the size of the file at ``key``."""
        try:
            return self._path(key).stat().st_size
        except OSError as exc:
            raise StorageError(f"{self.url}/{key}: {exc.strerror or exc}", key=key) from exc

    def list(self, prefix: str) -> Iterator[str]:
        """Yield keys under ``prefix`` in lexicographic order (temp files skipped)."""
        # Like S3, "a" matches "a/x" and "a-b": walk from the prefix's folder.
        start = self._path(prefix) if prefix.endswith("/") else self._path(prefix or ".").parent
        if not prefix:
            start = self.root
        if not start.is_dir():
            return
        keys = (
            path.relative_to(self.root).as_posix()
            for path in start.rglob("*")
            if path.is_file() and not path.name.startswith(".tmp-")
        )
        yield from sorted(key for key in keys if key.startswith(prefix))

    def delete(self, keys: Iterable[str]) -> None:
        """Delete files; missing ones are ignored."""
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def download(self, key: str, path: Path) -> None:
        """Copy ``key`` to ``path``: a hard link when possible, else a copy."""
        source = self._path(key)
        if not source.is_file():
            raise StorageError(f"{self.url}/{key}: no such object", key=key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        tmp.replace(path)

    def _staged(self, key: str) -> contextlib.AbstractContextManager[tuple[BinaryIO, Path]]:
        return temp_beside(self._path(key), key=key)

    @staticmethod
    def _commit(tmp: Path, target: Path, *, if_absent: bool) -> bool:
        if not if_absent:
            tmp.replace(target)
            return True
        try:
            # link() fails if the target exists: an atomic create-if-absent.
            os.link(tmp, target)
        except FileExistsError:
            return False
        return True
