"""The web page's routes: sign-in, the session cookie, its pages and static files.

In process (TestClient): the browser tests (tests/ui) drive the same pages in
Chromium against real processes.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from scheduler.api.auth import SESSION_COOKIE

from .conftest import AUTH_A, AUTH_B, KEY_A, KEY_B, TestClient


def sign_in(client: TestClient, key: str = KEY_A, **fields: str) -> object:
    return client.post("/ui/session", data={"key": key, **fields}, follow_redirects=False)


def test_the_sign_in_page_asks_for_a_key_in_a_password_field_under_a_strict_policy(
    client: TestClient,
) -> None:
    answer = client.get("/ui/")
    assert answer.status_code == 200
    assert '<input id="key" type="password" name="key"' in answer.text
    assert '<form method="post" action="/ui/session">' in answer.text
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert answer.headers["Cache-Control"] == "no-store"
    assert "<script>" not in answer.text  # no inline script anywhere
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"


def test_a_right_key_sets_an_httponly_strict_session_cookie_without_a_lifetime(
    client: TestClient,
) -> None:
    answer = sign_in(client)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
    cookie = answer.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert {"httponly", "samesite", "path"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/" in cookie.lower()
    assert not {"max-age", "expires", "secure"} & attributes  # a browser-session cookie, http
    jobs_page = client.get("/ui/")
    assert 'src="/ui/static/js/jobs.js"' in jobs_page.text
    # The cookie authenticates the API like the header does.
    assert client.get("/v1/jobs").status_code == 200


def test_a_session_over_https_gets_a_secure_cookie(app: FastAPI) -> None:
    with TestClient(app, base_url="https://testserver") as client:
        assert "secure" in sign_in(client).headers["set-cookie"].lower()


def test_behind_a_proxy_that_ends_tls_the_cookie_is_secure_too(client: TestClient) -> None:
    answer = client.post(
        "/ui/session",
        data={"key": KEY_A},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and "secure" in answer.headers["set-cookie"].lower()


def test_a_wrong_key_shows_the_form_again_and_sets_no_cookie(client: TestClient) -> None:
    answer = sign_in(client, "not-a-key", next="/ui/jobs/abc")
    assert answer.status_code == 401
    assert "not one of this server" in answer.text
    assert 'name="next" value="/ui/jobs/abc"' in answer.text
    assert "set-cookie" not in answer.headers
    assert client.get("/v1/jobs").status_code == 401


def test_after_sign_in_the_page_goes_back_to_a_page_of_its_own_never_elsewhere(
    client: TestClient,
) -> None:
    assert sign_in(client, next="/ui/jobs/abc").headers["location"] == "/ui/jobs/abc"
    for elsewhere in ("https://evil.example/", "//evil.example/ui/", "/v1/jobs", "/ui/\\x"):
        assert sign_in(client, next=elsewhere).headers["location"] == "/ui/"
    client.cookies.clear()
    form = client.get("/ui/", params={"next": "//evil.example/"}).text
    assert 'name="next" value="/ui/"' in form


def test_a_signed_out_player_link_goes_to_sign_in_then_back(client: TestClient) -> None:
    answer = client.get("/ui/jobs/3f9c0a", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/?next=/ui/jobs/3f9c0a"
    form = client.get(answer.headers["location"])
    assert 'name="next" value="/ui/jobs/3f9c0a"' in form.text


def test_the_player_of_an_unknown_or_another_tenants_job_is_a_404_page(
    client: TestClient,
) -> None:
    job = client.post("/v1/jobs", json={"input": "Hello there.", "name": "hi"}, headers=AUTH_B)
    assert job.status_code == 202, job.text
    sign_in(client, KEY_A)
    for job_id in (job.json()["id"], "no-such-job"):
        page = client.get(f"/ui/jobs/{job_id}")
        assert page.status_code == 404 and "No such job" in page.text
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    sign_in(client, KEY_B)
    page = client.get(f"/ui/jobs/{job.json()['id']}")
    assert page.status_code == 200
    assert 'src="/ui/static/js/player.js"' in page.text and "<title>hi · ttsbatch" in page.text


def test_the_header_wins_over_the_cookie(client: TestClient) -> None:
    sign_in(client, KEY_A)
    mine = client.post("/v1/jobs", json={"input": "Mine.", "name": "a"}, headers=AUTH_A).json()
    assert client.get(f"/v1/jobs/{mine['id']}", headers=AUTH_B).status_code == 404
    assert client.get("/v1/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_cookie_does_not_authenticate_a_change_sent_from_another_site(
    client: TestClient,
) -> None:
    sign_in(client)
    job = client.post("/v1/jobs", json={"input": "Stay.", "name": "s"}).json()
    refused = client.delete(f"/v1/jobs/{job['id']}", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 401 and "another site" in refused.json()["detail"]
    same = client.delete(f"/v1/jobs/{job['id']}", headers={"Origin": "http://testserver"})
    assert same.status_code == 204
    signed_elsewhere = client.post(
        "/ui/session", data={"key": KEY_A}, headers={"Origin": "https://evil.example"}
    )
    assert signed_elsewhere.status_code == 403
    # A browser's Sec-Fetch-Site decides when sent (a proxy may rewrite Host).
    fetched = {"Origin": "https://books.example", "Sec-Fetch-Site": "same-origin"}
    assert client.post(f"/v1/jobs/{job['id']}/retry", headers=fetched).status_code == 202
    cross = {"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"}
    assert client.delete("/ui/session", headers=cross).status_code == 403  # no logout CSRF
    assert client.get("/v1/jobs").status_code == 200  # still signed in


def test_signing_out_forgets_the_session(client: TestClient) -> None:
    sign_in(client)
    answer = client.post("/ui/session/delete", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
    assert (
        f'{SESSION_COOKIE}=""' in answer.headers["set-cookie"]
        or "Max-Age=0" in (answer.headers["set-cookie"])
    )
    assert client.get("/v1/jobs").status_code == 401
    sign_in(client)
    assert client.delete("/ui/session").status_code == 204
    assert client.get("/v1/jobs").status_code == 401


def test_a_rotated_key_ends_the_session_with_a_message(
    make_app: Callable[..., FastAPI],
) -> None:
    with TestClient(make_app()) as client:
        client.cookies.set(SESSION_COOKIE, "an-old-key")
        answer = client.get("/v1/jobs")
        assert answer.status_code == 401 and "sign in again" in answer.json()["detail"]
        assert 'type="password"' in client.get("/ui/").text


def test_static_files_are_revalidated_and_typed(client: TestClient) -> None:
    script = client.get("/ui/static/js/player.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert script.headers["cache-control"] == "no-cache" and script.headers["etag"]
    again = client.get("/ui/static/js/player.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/ui/static/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/ui/static/../pages/jobs.html").status_code == 404
