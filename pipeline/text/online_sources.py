"""Optional online sources of subtitles and screenplays: off by default, each needing the user's own key or consent.

Nothing here runs unless Settings.cloud_enabled is on *and* the source has what it needs (an OpenSubtitles API key;
explicit consent and a site URL for the screenplay-site fetcher). Tests drive them with recorded responses through
an injected httpx transport; they never reach a server.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

from pipeline.errors import BadInputError, WeaverError

OPENSUBTITLES_API = "https://api.opensubtitles.com/api/v1"


@dataclass
class SourceHit:
    id: str
    title: str
    year: int | None
    language: str | None
    kind: str  # "subtitles" | "screenplay"
    url: str = ""
    extra: dict = field(default_factory=dict)


class OnlineSource:
    """Search and download from one online source (after the user opted in)."""

    name = ""
    needs = ""  # "api_key" | "consent"

    def __init__(self, settings, transport=None):
        self.settings = settings
        self.transport = transport

    def available(self) -> tuple[bool, str]:
        if not getattr(self.settings, "cloud_enabled", False):
            return False, "online sources are off (enable cloud services in Settings to use them)"
        return True, ""

    def require(self) -> None:
        ok, why = self.available()
        if not ok:
            raise WeaverError(f"{self.name}: {why}")

    def _client(self, **headers):
        import httpx

        return httpx.Client(transport=self.transport, headers={"User-Agent": "VoiceWeaver v0.1", **headers},
                            timeout=30, follow_redirects=True)

    def _get(self, client, method: str, url: str, **kw):
        import httpx

        try:
            r = client.request(method, url, **kw)
        except httpx.HTTPError as e:
            raise WeaverError(f"{self.name}: network error: {e}") from None
        self._check(r)
        return r

    def _check(self, r) -> None:
        if r.status_code >= 400:
            raise WeaverError(f"{self.name}: HTTP {r.status_code}")

    def search(self, query: str, *, year: int | None = None, language: str = "en") -> list[SourceHit]:
        raise NotImplementedError

    def download(self, hit: SourceHit, dest_dir: str | os.PathLike) -> Path:
        raise NotImplementedError


def _write_atomic(dest_dir: str | os.PathLike, name: str, data: bytes) -> Path:
    d = Path(dest_dir)
    d.mkdir(parents=True, exist_ok=True)
    from pipeline.files import safe_child, write_atomic

    safe = re.sub(r"[^\w.\- ]+", "_", Path(name).name).strip()
    target = safe_child(d, safe if safe.strip(".") else "download")  # a server's '..' never leaves downloads/
    return write_atomic(target, data)


class OpenSubtitlesSource(OnlineSource):
    """OpenSubtitles REST API v1 with the user's own API key."""

    name = "opensubtitles"
    needs = "api_key"

    @property
    def api_key(self) -> str | None:
        return getattr(self.settings, "opensubtitles_api_key", None)

    def available(self) -> tuple[bool, str]:
        ok, why = super().available()
        if ok and not self.api_key:
            return False, "needs your OpenSubtitles API key (opensubtitles_api_key in Settings)"
        return ok, why

    def _check(self, r) -> None:
        if r.status_code == 401:
            raise WeaverError("opensubtitles: OpenSubtitles rejected the API key")
        if r.status_code in (406, 429):
            try:
                detail = r.json().get("message") or ""
            except ValueError:
                detail = ""
            raise WeaverError(f"opensubtitles: download quota reached{': ' + detail if detail else ''}")
        super()._check(r)

    def search(self, query: str, *, year: int | None = None, language: str = "en") -> list[SourceHit]:
        self.require()
        params = {"query": query, "languages": language}
        if year:
            params["year"] = year
        with self._client(**{"Api-Key": self.api_key}) as c:
            data = self._get(c, "GET", f"{OPENSUBTITLES_API}/subtitles", params=params).json()
        hits = []
        for item in data.get("data", []):
            a = item.get("attributes", {})
            feature = a.get("feature_details") or {}
            files = a.get("files") or []
            if not files:
                continue
            hits.append(SourceHit(id=str(files[0]["file_id"]), title=feature.get("title") or a.get("release") or "?",
                                  year=feature.get("year"), language=a.get("language"), kind="subtitles",
                                  url=a.get("url", ""), extra={"release": a.get("release"),
                                                               "downloads": a.get("download_count")}))
        return hits

    def download(self, hit: SourceHit, dest_dir) -> Path:
        self.require()
        with self._client(**{"Api-Key": self.api_key}) as c:
            info = self._get(c, "POST", f"{OPENSUBTITLES_API}/download", json={"file_id": int(hit.id)}).json()
            if not info.get("link"):
                raise WeaverError("opensubtitles: the download answer had no link")
            data = self._get(c, "GET", info["link"]).content
        return _write_atomic(dest_dir, info.get("file_name") or f"{hit.id}.srt", data)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []
        self.pre: list[str] = []
        self._in_pre = 0

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []
        elif tag == "pre":
            self._in_pre += 1

    def handle_endtag(self, tag):
        if tag == "a" and self._href:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None
        elif tag == "pre" and self._in_pre:
            self._in_pre -= 1

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)
        if self._in_pre:
            self.pre.append(data)


class ScreenplaySiteSource(OnlineSource):
    """A screenplay site whose search results link to script pages holding the text in <pre> (IMSDb-like)."""

    name = "screenplay-site"
    needs = "consent"

    @property
    def base_url(self) -> str | None:
        return getattr(self.settings, "screenplay_site_url", None)

    def available(self) -> tuple[bool, str]:
        ok, why = super().available()
        if not ok:
            return ok, why
        if not self.base_url:
            return False, "no screenplay site configured (screenplay_site_url in Settings)"
        if not getattr(self.settings, "screenplay_site_consent", False):
            return False, (f"fetching from {urlparse(self.base_url).netloc} needs your consent: "
                           "set screenplay_site_consent in Settings")
        return True, ""

    def search(self, query: str, *, year: int | None = None, language: str = "en") -> list[SourceHit]:
        self.require()
        with self._client() as c:
            page = self._get(c, "GET", urljoin(self.base_url, "search"), params={"q": query}).text
        parser = _Links()
        parser.feed(page)
        words = [w for w in re.findall(r"\w+", query.lower())]
        hits = []
        for href, text in parser.links:
            if "script" in href.lower() and all(w in text.lower() for w in words):
                m = re.search(r"\((\d{4})\)", text)
                hits.append(SourceHit(id=href, title=re.sub(r"\s*\(\d{4}\)", "", text).strip(),
                                      year=int(m.group(1)) if m else None, language=language, kind="screenplay",
                                      url=urljoin(self.base_url, href)))
        return [h for h in hits if year is None or h.year in (None, year)]

    def download(self, hit: SourceHit, dest_dir) -> Path:
        self.require()
        with self._client() as c:
            page = self._get(c, "GET", hit.url or urljoin(self.base_url, hit.id)).text
        parser = _Links()
        parser.feed(page)
        text = html.unescape("".join(parser.pre)).strip("\n")
        if not text.strip():
            raise BadInputError(f"{self.name}: no screenplay text (<pre>) on {hit.url}")
        return _write_atomic(dest_dir, f"{hit.title}.txt", text.encode("utf-8"))


SOURCES = {OpenSubtitlesSource.name: OpenSubtitlesSource, ScreenplaySiteSource.name: ScreenplaySiteSource}


def get_source(name: str, settings, transport=None) -> OnlineSource:
    if name not in SOURCES:
        raise BadInputError(f"unknown online source '{name}' (known: {', '.join(SOURCES)})")
    return SOURCES[name](settings, transport=transport)


def list_sources(settings) -> list[dict]:
    """Each source: whether it can be used now, why not, and what it needs from the user."""
    out = []
    for name, cls in SOURCES.items():
        ok, why = cls(settings).available()
        out.append({"name": name, "available": ok, "reason": why, "needs": cls.needs})
    return out
