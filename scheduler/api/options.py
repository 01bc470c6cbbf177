"""A job's options as a request asks for them, the deployment's defaults filled in.

The engine, model and voice are chosen by
:func:`~scheduler.api.catalog.choose_engine` (``TTSBATCH_DEFAULT_*``); the
layout (chunk size, pauses), the audio format, its loudness, bit rate,
chapter files and tags are taken as sent. A cover the request uploaded is
part of the job's identity through its SHA-256.
"""

from __future__ import annotations

import hashlib

from scheduler.api.catalog import choose_engine
from scheduler.api.errors import InvalidRequestError
from scheduler.api.schemas import JobSpec
from ttsbatch.models import Cover, JobOptions
from ttsbatch.settings import JobDefaults


def job_options(
    spec: JobSpec, defaults: JobDefaults | None = None, *, cover: Cover | None = None
) -> JobOptions:
    """Return the job options a request asks for, the deployment's defaults filled in.

    Args:
        spec: The request's options.
        defaults: The deployment's engine, model and voice.
        cover: A cover image the request uploaded (its SHA-256 is an option).

    Raises:
        InvalidRequestError: an unknown engine or voice, or a field the engine
            needs is missing (:func:`~scheduler.api.catalog.choose_engine`); a
            loudness target out of range.
    """
    engine = choose_engine(
        spec.engine, spec.model, spec.voice, spec.language, defaults or JobDefaults()
    )
    fields: dict[str, object] = {
        "engine": engine,
        "audio_format": spec.audio_format,
        "loudness": spec.loudness,
        "bitrate_kbps": spec.bitrate_kbps,
        "split_chapters": spec.split_chapters,
        "read_along": spec.read_along,
        "read_along_unit": spec.read_along_unit,
    }
    if spec.max_chars is not None:
        fields["max_chars"] = spec.max_chars
    if spec.pauses is not None:
        fields["pauses"] = spec.pauses
    if spec.info is not None:
        fields["info"] = spec.info
    if cover is not None:
        fields["cover_sha256"] = hashlib.sha256(cover.data).hexdigest()
    options = JobOptions.model_validate(fields)
    try:
        options.loudness_target()
    except ValueError as exc:  # a spec checks it too; options made another way may not
        raise InvalidRequestError(f"loudness: {exc}") from None
    return options
