"""The finished audio over the API: format, loudness, bit rate, chapter files, tags, cover.

A job's body (JSON) and the multipart upload take the same fields; what they
ask for is what the job's options say. A loudness, bit rate or tags out of
range is a 422 naming the field. An uploaded cover is a JPEG or a PNG, told by
its bytes, of at most 20 MiB. ``ttsbatch submit`` sends the same fields.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from starlette.testclient import TestClient

from scheduler.api.errors import InvalidRequestError
from scheduler.api.options import job_options
from scheduler.api.schemas import JobSpec
from scheduler.api.sources import Upload, cover_of
from ttsbatch.cli import client as cli_client
from ttsbatch.client import ApiClient
from ttsbatch.models import MAX_COVER_BYTES, AudioFormat, Cover

from .conftest import AUTH_A, KEY_A

TEXT = "It was a bright cold day in April. The clocks were striking thirteen."
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 32
INFO = {"title": "Nineteen", "author": "G. Orwell", "narrator": "espeak", "year": "1949"}


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of ``app``; the app's Redis connections are closed after the test.

    The app has no shutdown hook that closes them, and this module makes many
    apps: left to the garbage collector, a socket may be reported unclosed.
    """
    with TestClient(app) as test_client:
        yield test_client
    app.state.services.state.client.close()


def post_json(client: TestClient, **body: object) -> Any:
    return client.post("/v1/jobs", json={"input": TEXT, "name": "opening", **body}, headers=AUTH_A)


def post_form(client: TestClient, **fields: str) -> Any:
    files = [("files", ("opening.txt", TEXT.encode(), "text/plain"))]
    return client.post("/v1/jobs", files=files, data=fields, headers=AUTH_A)


@pytest.mark.parametrize("audio_format", [f.value for f in AudioFormat])
def test_every_audio_format_is_accepted_in_a_json_body(
    client: TestClient, audio_format: str
) -> None:
    answer = post_json(client, audio_format=audio_format)
    assert answer.status_code == 202, answer.text
    assert answer.json()["options"]["audio_format"] == audio_format


def test_a_json_body_sets_loudness_bitrate_chapter_files_and_tags(client: TestClient) -> None:
    answer = post_json(
        client,
        audio_format="m4b",
        loudness="podcast",
        bitrate_kbps=96,
        split_chapters=True,
        info=INFO | {"language": "en", "publisher": "Secker", "description": "A novel."},
    )
    assert answer.status_code == 202, answer.text
    options = answer.json()["options"]
    assert options["audio_format"] == "m4b" and options["loudness"] == "podcast"
    assert options["bitrate_kbps"] == 96 and options["split_chapters"] is True
    assert options["info"] == INFO | {
        "language": "en",
        "publisher": "Secker",
        "description": "A novel.",
        "album": None,
    }
    assert options["cover_sha256"] is None


def test_a_json_body_takes_a_loudness_target_in_lufs(client: TestClient) -> None:
    answer = post_json(client, audio_format="mp3", loudness=-20)
    assert answer.status_code == 202, answer.text
    assert answer.json()["options"]["loudness"] == -20.0


def test_a_multipart_upload_takes_the_same_fields_as_strings(client: TestClient) -> None:
    answer = post_form(
        client,
        audio_format="opus",
        loudness="-20.5",
        bitrate_kbps="48",
        split_chapters="true",
        info='{"title": "Nineteen", "author": "G. Orwell"}',
    )
    assert answer.status_code == 202, answer.text
    options = answer.json()["options"]
    assert options["audio_format"] == "opus" and options["loudness"] == -20.5
    assert options["bitrate_kbps"] == 48 and options["split_chapters"] is True
    assert options["info"]["title"] == "Nineteen" and options["info"]["author"] == "G. Orwell"


def test_the_same_document_in_another_format_or_loudness_is_another_job(
    client: TestClient,
) -> None:
    ids = {
        post_json(client, **body).json()["id"]
        for body in (
            {},
            {"audio_format": "m4b"},
            {"audio_format": "m4b", "loudness": "ebu"},
            {"audio_format": "m4b", "info": {"title": "Other"}},
        )
    }
    assert len(ids) == 4


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"loudness": "loud"}, "loudness", "'audiobook', 'podcast', 'ebu' or 'off'"),
        ({"loudness": -50}, "loudness", "outside -40..-5"),
        ({"loudness": -4.5}, "loudness", "outside -40..-5"),
        ({"bitrate_kbps": 1000}, "bitrate_kbps", "320"),
        ({"audio_format": "aiff"}, "audio_format", "'m4b'"),
        ({"info": {"title": "x" * 1001}}, "info.title", "1000"),
        ({"info": {"isbn": "1"}}, "info.isbn", "Extra inputs"),
    ],
    ids=["preset", "too quiet", "too loud", "bitrate", "format", "long title", "unknown tag"],
)
def test_an_invalid_field_is_a_422_naming_it(
    client: TestClient, body: dict[str, object], field: str, says: str
) -> None:
    answer = post_json(client, **body)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith(f"{field}") and says in detail, detail


def test_an_invalid_loudness_or_tags_in_a_form_is_a_422_naming_the_field(
    client: TestClient,
) -> None:
    loud = post_form(client, loudness="-2")
    assert loud.status_code == 422 and loud.json()["detail"].startswith("loudness")
    assert "outside -40..-5" in loud.json()["detail"]
    info = post_form(client, info="title=Nineteen")
    assert info.status_code == 422 and info.json()["detail"].startswith("info")
    assert "a JSON object" in info.json()["detail"]


# -- the cover ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "media_type"), [(PNG, "image/png"), (JPEG, "image/jpeg")], ids=["png", "jpeg"]
)
def test_a_cover_is_a_jpeg_or_png_told_by_its_bytes(data: bytes, media_type: str) -> None:
    cover = cover_of(Upload("cover.bin", data))  # the name says nothing
    assert cover.media_type == media_type and cover.data == data


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"GIF89a" + b"\0" * 16, "cover.gif: not a JPEG or PNG image"),
        (b"", "cover.gif: the file is empty"),
        (JPEG + b"\0" * MAX_COVER_BYTES, f"the limit is {MAX_COVER_BYTES} (20 MiB)"),
    ],
    ids=["gif", "empty", "too large"],
)
def test_a_cover_that_is_no_jpeg_or_png_or_too_large_is_refused_naming_it(
    data: bytes, says: str
) -> None:
    with pytest.raises(InvalidRequestError, match=r"^cover ") as refused:
        cover_of(Upload("cover.gif", data))
    assert refused.value.status == 422 and says in str(refused.value)


def test_a_cover_is_part_of_the_jobs_options_by_its_sha256() -> None:
    cover = Cover(media_type="image/png", data=PNG)
    spec = JobSpec(audio_format=AudioFormat.M4B)
    with_cover = job_options(spec, cover=cover)
    assert with_cover.cover_sha256 == hashlib.sha256(PNG).hexdigest()
    assert job_options(spec).cover_sha256 is None
    assert with_cover.model_copy(update={"cover_sha256": None}) == job_options(spec)


# -- ttsbatch submit ---------------------------------------------------------------------------


@pytest.fixture
def submit_to(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """Point ``ttsbatch submit`` at ``app`` (through the test client's transport)."""
    with TestClient(app) as client:

        def to_app(server: str, key: str | None) -> ApiClient:
            return ApiClient("http://testserver", key or "", transport=client._transport)

        monkeypatch.setattr(cli_client, "_client", to_app)
        yield client
    app.state.services.state.client.close()


def test_submit_sends_the_format_loudness_bitrate_chapter_files_and_tags(
    submit_to: TestClient, tmp_path: Any
) -> None:
    book = tmp_path / "book.txt"
    book.write_text(TEXT, encoding="utf-8")
    argv = [str(book), "--key", KEY_A, "--format", "mp3", "--loudness", "-20", "--bitrate", "96"]
    argv += ["--split-chapters", "--title", "Nineteen", "--author", "G. Orwell", "--year", "1949"]
    result = CliRunner().invoke(cli_client.submit, argv)
    assert result.exit_code == 0, result.output
    job = submit_to.get(f"/v1/jobs/{result.output.strip()}", headers=AUTH_A).json()
    options = job["options"]
    assert options["audio_format"] == "mp3" and options["loudness"] == -20.0
    assert options["bitrate_kbps"] == 96 and options["split_chapters"] is True
    info = {k: v for k, v in options["info"].items() if v is not None}
    assert info == {"title": "Nineteen", "author": "G. Orwell", "year": "1949"}


def test_submit_without_audio_options_asks_for_the_servers_defaults(
    submit_to: TestClient, tmp_path: Any
) -> None:
    book = tmp_path / "book.txt"
    book.write_text(TEXT, encoding="utf-8")
    result = CliRunner().invoke(cli_client.submit, [str(book), "--key", KEY_A])
    assert result.exit_code == 0, result.output
    job = submit_to.get(f"/v1/jobs/{result.output.strip()}", headers=AUTH_A).json()
    assert job["options"]["audio_format"] == "wav" and job["options"]["loudness"] is None
    assert job["options"]["split_chapters"] is False and job["options"]["info"]["title"] is None


def test_submit_refuses_a_bad_loudness_before_sending_anything(tmp_path: Any) -> None:
    book = tmp_path / "book.txt"
    book.write_text(TEXT, encoding="utf-8")
    result = CliRunner().invoke(cli_client.submit, [str(book), "--loudness", "loudest"])
    assert result.exit_code == 2
    assert "Invalid value for '--loudness'" in result.output
    assert "audiobook, podcast, ebu, off, or a target in LUFS" in result.output


def test_submit_dry_run_prints_the_servers_estimate_and_makes_no_job(
    submit_to: TestClient, tmp_path: Any
) -> None:
    book = tmp_path / "book.txt"
    book.write_text(TEXT, encoding="utf-8")
    result = CliRunner().invoke(cli_client.submit, [str(book), "--key", KEY_A, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"dry run: 1 chunks, {len(TEXT)} characters for espeak" in result.output
    assert "billed: 69 characters, $0.0000" in result.output
    assert submit_to.get("/v1/jobs", headers=AUTH_A).json()["items"] == []


def test_a_cover_uploaded_with_a_job_is_part_of_its_identity(
    client: TestClient,
) -> None:
    files = [("files", ("opening.txt", TEXT.encode(), "text/plain"))]
    plain = client.post("/v1/jobs", files=files, headers=AUTH_A).json()
    covered = client.post(
        "/v1/jobs", files=[*files, ("cover", ("c.jpg", JPEG, "image/jpeg"))], headers=AUTH_A
    ).json()
    assert covered["id"] != plain["id"]
    assert covered["options"]["cover_sha256"] == hashlib.sha256(JPEG).hexdigest()
    two = [*files, ("cover", ("c.jpg", JPEG, "image/jpeg")), ("cover", ("d.png", PNG, "image/png"))]
    assert client.post("/v1/jobs", files=two, headers=AUTH_A).status_code == 422
    bad = [*files, ("cover", ("c.gif", b"GIF89a" + b"\0" * 20, "image/gif"))]
    answer = client.post("/v1/jobs", files=bad, headers=AUTH_A)
    assert answer.status_code == 422 and "not a JPEG or PNG" in answer.text
