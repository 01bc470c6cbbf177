"""The engines and voices a job may ask for, checked before anything is planned.

The scheduler never imports the worker (import-linter): espeak's voices are
read from the data folder of the ``espeakng-loader`` wheel the workers use;
provider voices are the provider's business, so any name is passed on.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final

from scheduler.api.errors import InvalidRequestError

ENGINES: Final = ("espeak", "together", "openai")


@functools.cache
def espeak_voices() -> frozenset[str]:
    """Return espeak-ng's voice names, language tags and identifiers, lower-cased."""
    import espeakng_loader  # noqa: PLC0415 - only when an espeak voice is checked

    root = Path(espeakng_loader.get_data_path()) / "lang"
    names: set[str] = set()
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        names.add(path.name.lower())
        names.add(path.relative_to(root).as_posix().lower())
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in {"language", "name"}:
                names.add(words[1].lower())
    return frozenset(names)


def check_engine(engine: str, voice: str | None) -> None:
    """Refuse an unknown engine, or a voice espeak-ng does not have.

    Raises:
        InvalidRequestError: naming the engines or where to find the voices.
    """
    if engine not in ENGINES:
        raise InvalidRequestError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "espeak" and voice is not None:
        base = voice.partition("+")[0].strip().lower()
        if base not in espeak_voices():
            raise InvalidRequestError(
                f"unknown espeak voice {voice!r}: use a language tag such as en-us, en-gb,"
                " fr-fr or de (`espeak-ng --voices` lists them)"
            )
