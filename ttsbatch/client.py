"""A client of the ttsbatch REST API (httpx): submit, follow, list and fetch jobs.

>>> with ApiClient("http://127.0.0.1:8000", key) as api:   # doctest: +SKIP
...     job = api.submit_text("Hello there.", name="hello")
...     for event, body in api.events(job["id"]):
...         print(event, body["progress"]["chunks_done"])
...     api.download(job["id"], Path("out"))
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import httpx
from httpx_sse import connect_sse

from ttsbatch.errors import TtsBatchError
from ttsbatch.inputs import read_input

JsonDict = dict[str, Any]


class ApiClientError(TtsBatchError):
    """Raised when the API refuses a request (4xx/5xx) or cannot be reached.

    ``status_code`` is the HTTP status (None if the server was not reached).
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ApiClient:
    """The API at ``base_url`` with an API key.

    Args:
        transport: an httpx transport (tests pass one; default: the network).
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
            transport=transport,
        )
        # Presigned URLs go to the store, never with our key.
        self._plain = httpx.Client(timeout=timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()
        self._plain.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiClientError(f"{self.base_url}: cannot reach the API ({exc})") from exc
        if response.is_error:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiClientError(
                f"{method} {path}: {response.status_code} {detail}",
                status_code=response.status_code,
            )
        return response

    # -- jobs ------------------------------------------------------------------

    def submit_text(
        self,
        text: str,
        *,
        name: str | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> JsonDict:
        """Submit inline text; ``options`` are the job fields (engine, voice, tags, …)."""
        body = {"input": text, **({"name": name} if name else {}), **options}
        return self._submit(body, idempotency_key)

    def submit_json(
        self, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> JsonDict:
        """Submit a job body as the API takes it (input, documents or source, and options)."""
        return self._submit(dict(body), idempotency_key)

    def _submit(self, body: JsonDict, idempotency_key: str | None) -> JsonDict:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: JsonDict = self._call("POST", "/v1/jobs", json=body, headers=headers).json()
        return result

    def submit_files(
        self,
        paths: Sequence[Path],
        *,
        idempotency_key: str | None = None,
        cover: tuple[str, bytes] | None = None,
        **options: Any,
    ) -> JsonDict:
        """Upload files (txt, md, html, epub) as the documents of one job, and a ``cover``
        image (its name and bytes) over theirs."""
        files = [
            (
                "files",
                (
                    p.name,
                    read_input(p),
                    mimetypes.guess_type(p.name)[0] or "application/octet-stream",
                ),
            )
            for p in paths
        ]
        if cover is not None:
            name, image = cover
            files.append(("cover", (name, image, mimetypes.guess_type(name)[0] or "image/jpeg")))
        data = {
            key: json.dumps(value) if isinstance(value, dict) else str(value)
            for key, value in options.items()
            if value is not None
        }
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: JsonDict = self._call(
            "POST", "/v1/jobs", files=files, data=data, headers=headers
        ).json()
        return result

    def job(self, job_id: str) -> JsonDict:
        """Return a job's resource."""
        result: JsonDict = self._call("GET", f"/v1/jobs/{job_id}").json()
        return result

    def jobs(
        self,
        *,
        status: str | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int = 50,
    ) -> Iterator[JsonDict]:
        """Yield the tenant's jobs, newest first, following the pages."""
        offset: int | None = 0
        while offset is not None:
            params: list[tuple[str, str | int]] = [("offset", offset), ("limit", limit)]
            if status:
                params.append(("status", status))
            params += [("tag", f"{k}={v}") for k, v in (tags or {}).items()]
            page = self._call("GET", "/v1/jobs", params=params).json()
            yield from page["items"]
            offset = page["next_offset"]

    def cancel(self, job_id: str, *, purge: bool = False) -> None:
        """Cancel a job (and with ``purge`` delete its artefacts)."""
        self._call("DELETE", f"/v1/jobs/{job_id}", params={"purge": str(purge).lower()})

    def retry(
        self, job_id: str, *, max_cost: float | None = None, max_billed_chars: int | None = None
    ) -> JsonDict:
        """Re-run what is missing of a failed or cancelled job; caps given replace the job's
        (a job stopped at its cap goes on), those not given stay."""
        caps = {"max_cost": max_cost, "max_billed_chars": max_billed_chars}
        given = {name: value for name, value in caps.items() if value is not None}
        body = {"json": given} if given else {}
        result: JsonDict = self._call("POST", f"/v1/jobs/{job_id}/retry", **body).json()
        return result

    def result(self, job_id: str) -> JsonDict:
        """Return a succeeded job's files with their URLs."""
        result: JsonDict = self._call("GET", f"/v1/jobs/{job_id}/result").json()
        return result

    def events(self, job_id: str) -> Iterator[tuple[str, JsonDict]]:
        """Yield ``(event, job)`` from the job's event stream until it ends (``end``)."""
        try:
            with connect_sse(
                self._http, "GET", f"/v1/jobs/{job_id}/events", timeout=None
            ) as source:
                if source.response.is_error:
                    source.response.read()
                    raise ApiClientError(
                        f"events of {job_id}: {source.response.status_code} {source.response.text}",
                        status_code=source.response.status_code,
                    )
                for event in source.iter_sse():
                    yield event.event, json.loads(event.data)
                    if event.event == "end":
                        return
        except httpx.HTTPError as exc:
            raise ApiClientError(f"events of {job_id}: the stream broke ({exc})") from exc

    def download(self, job_id: str, outdir: Path) -> list[Path]:
        """Download every file of a succeeded job into ``outdir``, checking each SHA-256.

        Raises:
            ApiClientError: a download failed or its checksum does not match.
        """
        outdir.mkdir(parents=True, exist_ok=True)
        written = []
        for item in self.result(job_id)["files"]:
            target = outdir / Path(item["name"]).name
            own = item["url"].startswith(self.base_url)
            client = self._http if own else self._plain
            digest = hashlib.sha256()
            partial = target.with_name(f".{target.name}.part")
            try:
                with client.stream("GET", item["url"]) as response, partial.open("wb") as sink:
                    if response.is_error:
                        raise ApiClientError(
                            f"{item['name']}: download answered {response.status_code}",
                            status_code=response.status_code,
                        )
                    for block in response.iter_bytes():
                        digest.update(block)
                        sink.write(block)
            except httpx.HTTPError as exc:
                partial.unlink(missing_ok=True)
                raise ApiClientError(f"{item['name']}: download failed ({exc})") from exc
            if digest.hexdigest() != item["sha256"]:
                partial.unlink(missing_ok=True)
                raise ApiClientError(f"{item['name']}: checksum mismatch; fetch again")
            partial.replace(target)
            written.append(target)
        return written
