"""Online sources against recorded responses only (httpx.MockTransport): off by default, key/consent required."""

from __future__ import annotations

import json

import httpx
import pytest

from pipeline.config import Settings
from pipeline.errors import WeaverError
from pipeline.text.online_sources import get_source, list_sources
from pipeline.text.scripts import parse_script
from pipeline.service import Service
from pipeline.text.subtitles import read_subtitle_file

SEARCH = {"total_count": 1, "data": [{"id": "9001", "type": "subtitle", "attributes": {
    "language": "en", "download_count": 1234, "release": "The.Winter.Farm.2024.1080p", "url": "https://example.invalid/s/9001",
    "feature_details": {"title": "The Winter Farm", "year": 2024}, "files": [{"file_id": 777, "file_name": "winter.srt"}]}}]}
DOWNLOAD = {"link": "https://dl.example.invalid/file/777", "file_name": "The.Winter.Farm.srt", "remaining": 4}
SRT = "1\n00:00:01,200 --> 00:00:03,000\nYou left the back door open again.\n\n2\n00:00:03,500 --> 00:00:05,000\nI did not.\n"
RESULTS = """<html><body><h1>Search results</h1><p><a href="/scripts/The-Winter-Farm.html">The Winter Farm (2024)</a></p>
<p><a href="/scripts/Other.html">Another Film (1999)</a></p><a href="/about">about</a></body></html>"""
SCRIPT_PAGE = """<html><body><pre>
INT. KITCHEN - NIGHT

Rain on the window.

                    BORIS
          You left the back door open again.

                    ALICE
          I did not. The wind opens it &amp; closes it.

                    BORIS
          The wind does not leave boots in the hall.
</pre></body></html>"""


class Recorder:
    """A recorded-response handler that also counts the requests it saw."""

    def __init__(self, routes):
        self.routes, self.calls = routes, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path, dict(request.headers)))
        for (method, path), resp in self.routes.items():
            if request.method == method and request.url.path.endswith(path):
                return resp(request) if callable(resp) else resp
        return httpx.Response(404)


def opensubtitles_routes():
    return {("GET", "/subtitles"): httpx.Response(200, json=SEARCH),
            ("POST", "/download"): httpx.Response(200, json=DOWNLOAD),
            ("GET", "/file/777"): httpx.Response(200, content=SRT.encode())}


def test_off_by_default_and_no_request_is_made():
    rec = Recorder(opensubtitles_routes())
    src = get_source("opensubtitles", Settings(opensubtitles_api_key="k"), httpx.MockTransport(rec))
    with pytest.raises(WeaverError, match="off"):
        src.search("winter farm")
    assert rec.calls == []
    rows = {r["name"]: r for r in list_sources(Settings())}
    assert not rows["opensubtitles"]["available"] and not rows["screenplay-site"]["available"]


def test_opensubtitles_needs_the_users_key():
    src = get_source("opensubtitles", Settings(cloud_enabled=True))
    ok, why = src.available()
    assert not ok and "API key" in why


def test_opensubtitles_search_and_download_parse(tmp_path):
    rec = Recorder(opensubtitles_routes())
    src = get_source("opensubtitles", Settings(cloud_enabled=True, opensubtitles_api_key="secret"), httpx.MockTransport(rec))
    hits = src.search("winter farm", year=2024)
    assert [(h.id, h.title, h.year, h.kind) for h in hits] == [("777", "The Winter Farm", 2024, "subtitles")]
    path = src.download(hits[0], tmp_path)
    assert path.name == "The.Winter.Farm.srt"
    doc = read_subtitle_file(path)
    assert doc.lines[0].text == "You left the back door open again."
    assert all(h["api-key"] == "secret" for _, p, h in rec.calls if "/api/v1" in p)


@pytest.mark.parametrize("status,match", [(401, "rejected the API key"), (429, "quota"), (406, "quota")])
def test_opensubtitles_errors_are_one_line(status, match):
    rec = Recorder({("GET", "/subtitles"): httpx.Response(status, json={"message": "You have downloaded your allowed 5 subtitles"})})
    src = get_source("opensubtitles", Settings(cloud_enabled=True, opensubtitles_api_key="k"), httpx.MockTransport(rec))
    with pytest.raises(WeaverError, match=match) as e:
        src.search("x")
    assert "\n" not in str(e.value)


def test_network_error_is_one_line():
    def boom(request):
        raise httpx.ConnectError("connection refused", request=request)

    src = get_source("opensubtitles", Settings(cloud_enabled=True, opensubtitles_api_key="k"), httpx.MockTransport(boom))
    with pytest.raises(WeaverError, match="network error"):
        src.search("x")


def test_screenplay_site_needs_consent_then_fetches_a_parseable_script(tmp_path):
    settings = Settings(cloud_enabled=True, screenplay_site_url="https://scripts.example.invalid/")
    rec = Recorder({("GET", "/search"): httpx.Response(200, text=RESULTS),
                    ("GET", "/scripts/The-Winter-Farm.html"): httpx.Response(200, text=SCRIPT_PAGE)})
    src = get_source("screenplay-site", settings, httpx.MockTransport(rec))
    ok, why = src.available()
    assert not ok and "consent" in why and "scripts.example.invalid" in why
    with pytest.raises(WeaverError):
        src.search("winter farm")
    assert rec.calls == []
    settings.screenplay_site_consent = True
    hits = src.search("winter farm")
    assert [(h.title, h.year) for h in hits] == [("The Winter Farm", 2024)]
    script = parse_script(src.download(hits[0], tmp_path))
    assert script.characters == ["BORIS", "ALICE"] and "&" in script.lines[1].text


def test_service_fetch_adds_the_screenplay_to_the_library(tmp_path):
    home = tmp_path / "home"
    Settings(cloud_enabled=True, screenplay_site_url="https://scripts.example.invalid/", screenplay_site_consent=True).save(home)
    rec = Recorder({("GET", "/search"): httpx.Response(200, text=RESULTS),
                    ("GET", "/scripts/The-Winter-Farm.html"): httpx.Response(200, text=SCRIPT_PAGE)})
    svc = Service(home=home)
    res = svc.fetch_online("screenplay-site", "winter farm", transport=httpx.MockTransport(rec))
    assert res["kind"] == "screenplay"
    found = svc.search_scripts("boots")
    assert any(r["match"] == "line" and r["character"] == "BORIS" for r in found)


def test_quota_reached_at_the_download_step_is_one_line(tmp_path):
    routes = opensubtitles_routes()
    routes[("POST", "/download")] = httpx.Response(406, json={"message": "You have downloaded your allowed 5 subtitles for 24h"})
    src = get_source("opensubtitles", Settings(cloud_enabled=True, opensubtitles_api_key="k"), httpx.MockTransport(Recorder(routes)))
    hits = src.search("winter farm")
    with pytest.raises(WeaverError, match="quota reached: You have downloaded") as e:
        src.download(hits[0], tmp_path)
    assert "\n" not in str(e.value) and not any(tmp_path.iterdir())
