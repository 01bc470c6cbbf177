"""Copying a finished job's outputs out of the store into a folder."""

from __future__ import annotations

from pathlib import Path

from ttsbatch import keys
from ttsbatch.errors import InputError
from ttsbatch.models import Manifest
from ttsbatch.storage import Store


def check_writable(outdir: Path) -> None:
    """Create ``outdir`` if needed and make sure files can be written there.

    Raises:
        InputError: naming the folder and the reason.
    """
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe = outdir / ".ttsbatch-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"{outdir}: cannot write output here ({exc.strerror or exc})") from exc


def download_outputs(store: Store, manifest: Manifest, outdir: Path) -> list[Path]:
    """Copy every output of a succeeded job to ``outdir/<name>.<suffix>``."""
    written: list[Path] = []
    for plan in manifest.documents:
        prefix_len = len(keys.output_key(manifest.job_id, plan.doc, ""))
        for key in manifest.outputs.get(plan.doc, {}).values():
            target = outdir / f"{plan.name}.{key[prefix_len:]}"
            store.download(key, target)
            written.append(target)
    return written
