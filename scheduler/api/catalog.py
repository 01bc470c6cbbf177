"""The engines and voices a job may ask for, checked before anything is planned.

The scheduler never imports the worker (import-linter): espeak's voices are
read from the data folder of the ``espeakng-loader`` wheel the workers use;
provider voices are the provider's business, so any name is passed on.

:func:`choose_engine` fills in the deployment's defaults (``TTSBATCH_DEFAULT_*``)
and refuses, naming the field, a request that would otherwise be spoken by an
engine it did not ask for: a provider ``model`` on an espeak deployment without
``engine``, or a provider engine without a model or a voice.
"""

from __future__ import annotations

import functools
from pathlib import Path

from scheduler.api.errors import InvalidRequestError
from ttsbatch.models import EngineSpec
from ttsbatch.settings import ENGINES, PROVIDER_ENGINES, PROVIDER_EXAMPLES, JobDefaults

__all__ = ["ENGINES", "check_engine", "choose_engine", "espeak_voices"]


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


def check_engine(engine: str, voice: str | None, *, defaulted: bool = False) -> None:
    """Refuse an unknown engine, or a voice espeak-ng does not have.

    ``defaulted`` says the engine is the deployment's, not the request's: the
    message then says that ``engine`` was not sent.

    Raises:
        InvalidRequestError: naming the engines or where to find the voices.
    """
    if engine not in ENGINES:
        raise InvalidRequestError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "espeak" and voice is not None:
        base = voice.partition("+")[0].strip().lower()
        if base not in espeak_voices():
            hint = (
                "; no `engine` was sent and this deployment's default engine is espeak:"
                f" send `engine` ({', '.join(PROVIDER_ENGINES)}) for a provider's voice"
                if defaulted
                else ""
            )
            raise InvalidRequestError(
                f"unknown espeak voice {voice!r}: use a language tag such as en-us, en-gb,"
                f" fr-fr or de (`espeak-ng --voices` lists them){hint}"
            )


def choose_engine(
    engine: str | None,
    model: str | None,
    voice: str | None,
    language: str | None,
    defaults: JobDefaults,
) -> EngineSpec:
    """Return the engine a request asks for, the deployment's defaults filled in.

    Without ``engine`` the job gets the deployment's engine; the deployment's
    model and voice fill in only for that engine.

    Raises:
        InvalidRequestError: an unknown engine or espeak voice; a ``model`` for
            espeak (naming ``engine`` when it was not sent); a provider engine
            without ``model`` or ``voice`` (naming the one missing).
    """
    defaulted = engine is None
    chosen = engine or defaults.engine
    if chosen == defaults.engine:
        model = model or defaults.model or None
        voice = voice or defaults.voice or None
    if chosen not in ENGINES:
        raise InvalidRequestError(f"unknown engine {chosen!r}: choose one of {', '.join(ENGINES)}")
    if chosen in PROVIDER_ENGINES:
        examples = dict(zip(("model", "voice"), PROVIDER_EXAMPLES[chosen], strict=True))
        for field, value in (("model", model), ("voice", voice)):
            if not value:
                fallback = (
                    f", or set the deployment's TTSBATCH_DEFAULT_{field.upper()}"
                    if chosen == defaults.engine
                    else ""
                )
                raise InvalidRequestError(
                    f"`{field}` is missing: engine {chosen} needs a {field}"
                    f" (e.g. {examples[field]}): send `{field}`{fallback}"
                )
    elif model is not None:
        if defaulted:
            raise InvalidRequestError(
                f"`engine` is missing: `model` {model!r} is a provider's model, but this"
                f" deployment's default engine is {chosen}, which takes none: send"
                f' "engine": one of {", ".join(PROVIDER_ENGINES)}'
            )
        raise InvalidRequestError(
            f"{chosen} takes no `model`: leave it out, or choose engine"
            f" {' or '.join(PROVIDER_ENGINES)}"
        )
    check_engine(chosen, voice, defaulted=defaulted)
    return EngineSpec(engine=chosen, model=model, voice=voice, language=language)
