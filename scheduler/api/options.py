"""A job's options as a request asks for them, the deployment's defaults filled in.

The engine, model and voice are chosen by
:func:`~scheduler.api.catalog.choose_engine` (``TTSBATCH_DEFAULT_*``); the
layout (chunk size, pauses) and the audio format are taken as sent.
"""

from __future__ import annotations

from scheduler.api.catalog import choose_engine
from scheduler.api.schemas import JobSpec
from ttsbatch.models import JobOptions
from ttsbatch.settings import JobDefaults


def job_options(spec: JobSpec, defaults: JobDefaults | None = None) -> JobOptions:
    """Return the job options a request asks for, the deployment's defaults filled in.

    Raises:
        InvalidRequestError: an unknown engine or voice, or a field the engine
            needs is missing (:func:`~scheduler.api.catalog.choose_engine`).
    """
    engine = choose_engine(
        spec.engine, spec.model, spec.voice, spec.language, defaults or JobDefaults()
    )
    fields: dict[str, object] = {"engine": engine, "audio_format": spec.audio_format}
    if spec.max_chars is not None:
        fields["max_chars"] = spec.max_chars
    if spec.pauses is not None:
        fields["pauses"] = spec.pauses
    return JobOptions.model_validate(fields)
