"""The panel API's guard: token required (401), foreign Origin refused (403), path traversal refused (400)."""

from __future__ import annotations

import httpx
import pytest

from web_ui.server import PanelServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = PanelServer(home=tmp_path_factory.mktemp("home")).start()
    yield srv
    srv.stop()


def url(server, path):
    return f"http://127.0.0.1:{server.port}{path}"


def test_binds_loopback_and_prints_tokened_url(server):
    assert server.url.startswith(f"http://127.0.0.1:{server.port}/?token=")
    assert len(server.token) >= 24


@pytest.mark.parametrize("path", ["/api/media", "/api/jobs", "/api/settings", "/openapi.json", "/"])
def test_requests_without_token_get_401(server, path):
    assert httpx.get(url(server, path)).status_code == 401
    assert httpx.get(url(server, path), headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_bearer_query_and_cookie_tokens_are_accepted(server):
    auth = {"Authorization": f"Bearer {server.token}"}
    assert httpx.get(url(server, "/api/media"), headers=auth).json() == []
    assert httpx.get(url(server, f"/api/media?token={server.token}")).status_code == 200
    page = httpx.get(url(server, f"/?token={server.token}"))
    assert page.status_code == 200 and "Voice Weaver" in page.text
    cookie = page.cookies.get("weaver_token")
    assert cookie == server.token
    assert httpx.get(url(server, "/api/media"), cookies={"weaver_token": cookie}).status_code == 200


def test_foreign_origin_gets_403_even_with_token(server):
    auth = {"Authorization": f"Bearer {server.token}"}
    r = httpx.get(url(server, "/api/media"), headers={**auth, "Origin": "http://evil.example"})
    assert r.status_code == 403
    same = httpx.get(url(server, "/api/media"), headers={**auth, "Origin": f"http://127.0.0.1:{server.port}"})
    assert same.status_code == 200


def test_openapi_schema_lists_the_api(server):
    schema = httpx.get(url(server, "/openapi.json"), headers={"Authorization": f"Bearer {server.token}"}).json()
    assert "/api/media" in schema["paths"] and "/api/jobs/{job_id}/cancel" in schema["paths"]


@pytest.mark.parametrize("bad", ["../../etc/passwd", "..%2F..%2Fpipeline%2Fstore.py", "/etc/passwd"])
def test_path_traversal_in_file_parameters_gets_400(server, bad):
    auth = {"Authorization": f"Bearer {server.token}"}
    static = httpx.get(url(server, f"/static/{bad}"), headers=auth)
    assert static.status_code in (400, 404)
    assert "root:" not in static.text and "sqlite" not in static.text
    r = httpx.post(url(server, "/api/media/1/export"), headers=auth, json={"name": "../../outside"})
    assert r.status_code in (400, 404)
    up = httpx.post(url(server, "/api/upload"), params={"name": "../x.bin"}, headers=auth, content=b"abc")
    # the upload keeps only the base name, so it lands inside uploads/
    assert up.status_code == 200 and "/uploads/x.bin" in up.json()["path"]


def test_export_name_traversal_is_400_for_an_existing_item(server, tmp_path):
    from pipeline.library import Library

    lib = Library(server.app.state.weaver.home)
    with lib.atomic() as db:
        db["media"].insert({"kind": "file", "title": "t", "created_at": 0, "meta": "{}"})
        mid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    r = httpx.post(url(server, f"/api/media/{mid}/export"), headers={"Authorization": f"Bearer {server.token}"},
                   json={"name": "../../../tmp/evil"})
    assert r.status_code == 400 and "escapes" in r.json()["error"]
    lib.remove_media(mid)
