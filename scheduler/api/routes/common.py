"""Pieces the resource routers share: error responses, body parsing, paging parameters."""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from scheduler.api.errors import InvalidRequestError, TooLargeError, UnsupportedError
from scheduler.api.schemas import Problem
from scheduler.api.sources import Upload

ModelT = TypeVar("ModelT", bound=BaseModel)


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


#: Error answers every authenticated route may give.
ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    401: _problem("No API key, or an unknown one."),
    422: _problem("A field is invalid; the detail says which and what to change."),
}
NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: _problem("No such resource for this tenant.")
}
CONFLICT: Final[dict[int | str, dict[str, Any]]] = {
    409: _problem("The resource's state forbids this.")
}
SUBMIT: Final[dict[int | str, dict[str, Any]]] = {
    413: _problem("Too large: request bytes, characters or documents per job."),
    415: _problem("Unsupported media type or file format."),
    429: _problem("The tenant runs as many jobs as it may."),
    503: _problem("No running worker serves the job's engine; the detail names it."),
}


def json_or_upload_body(schema: str) -> dict[str, Any]:
    """Return the OpenAPI request body of a route taking ``schema`` as JSON or files as multipart."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}},
                "multipart/form-data": {"schema": {"$ref": "#/components/schemas/JobUpload"}},
            },
        }
    }


Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")]
Limit = Annotated[int, Query(ge=1, le=200, description="Items per page.")]


def validation_detail(exc: ValidationError) -> str:
    """Return a validation error as one line per field: ``where: what``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()
    )


def parse_model(model: type[ModelT], data: object) -> ModelT:
    """Validate ``data`` as ``model``; refuse it with a per-field message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequestError(validation_detail(exc)) from None


async def read_request(request: Request, max_bytes: int) -> tuple[list[Upload], object]:
    """Return a JSON or multipart request's uploaded files (none for JSON) and its data."""
    if media_type(request) == "multipart/form-data":
        return await read_form(request, max_bytes)
    return [], await read_json(request, max_bytes)


async def read_json(request: Request, max_bytes: int) -> object:
    """Return the request's JSON body, refusing a body over ``max_bytes``."""
    body = await _read_body(request, max_bytes)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"the body is not valid JSON ({exc})") from None


async def _read_body(request: Request, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(max_bytes: int) -> TooLargeError:
    """The error of a request body over the limit."""
    return TooLargeError(
        f"the request is larger than {max_bytes} bytes (TTSBATCH_API_MAX_REQUEST_BYTES):"
        " send fewer or smaller files, or put them in a bucket and send an s3:// source"
    )


#: Form fields holding JSON rather than a plain string.
_JSON_FIELDS: Final = frozenset({"tags", "pauses"})


async def read_form(request: Request, max_bytes: int) -> tuple[list[Upload], dict[str, object]]:
    """Return a multipart request's files (field ``files``) and its other fields."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise too_large(max_bytes)
    try:
        form = await request.form(max_files=1000, max_fields=100, max_part_size=max_bytes)
    except Exception as exc:  # noqa: BLE001 - multipart's errors have no common base
        raise InvalidRequestError(f"the multipart body cannot be read ({exc})") from None
    try:
        return await _form_parts(form, max_bytes)
    finally:
        await form.close()


async def _form_parts(form: FormData, max_bytes: int) -> tuple[list[Upload], dict[str, object]]:
    uploads: list[Upload] = []
    fields: dict[str, object] = {}
    size = 0
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key not in {"files", "cover"}:
                raise InvalidRequestError(
                    f"file field {key!r}: send documents as `files` and a cover image as `cover`"
                )
            data = await value.read()
            size += len(data)
            if size > max_bytes:
                raise too_large(max_bytes)
            uploads.append(Upload(value.filename or "document", data, key))
        elif key == "files":
            raise InvalidRequestError("`files` must be file parts (curl -F files=@book.txt)")
        elif key in _JSON_FIELDS:
            try:
                fields[key] = json.loads(value)
            except ValueError:
                raise InvalidRequestError(f"form field {key!r} must be JSON") from None
        else:
            fields[key] = value
    return uploads, fields


def media_type(request: Request) -> str:
    """Return the request's media type, refusing anything but JSON and multipart."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind in {"application/json", "multipart/form-data"}:
        return kind
    raise UnsupportedError(
        f"content type {kind or 'none'!r} is not supported: send application/json"
        " or multipart/form-data (files in `files`)"
    )
