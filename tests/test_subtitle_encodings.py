"""Subtitle files in legacy and Unicode encodings decode to exactly the text written: Western cp1252 with a few
accents (never Baltic/Central European), cp1251 Cyrillic, Shift-JIS, GB18030, UTF-16 LE/BE with and without a
BOM, UTF-8 with a BOM; short and long files. An unsure guess is recorded on the track and the user's pick reads
the file again (service, CLI, panel route), keeping the item."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from pipeline.errors import BadInputError
from pipeline.service import Service
from pipeline.text.subtitles import read_subtitle_file
from pipeline.text.encoding import detect

TEXTS = {
    "fr": ["Voilà, le café est prêt.", "Tu es bien naïf, mon ami.", "On se voit à la fête de Noël ?",
           "Il a déjà mangé, je crois.", "Ça suffit, on part maintenant.", "Elle était très contente hier soir."],
    "es": ["¿Dónde está el niño?", "Mañana vamos a la playa.", "No sé qué decirte, señor.",
           "La canción es muy bonita.", "Él llegó tarde otra vez.", "¡Qué sorpresa verte aquí!"],
    "de": ["Wir müssen jetzt gehen.", "Das ist schön, aber zu groß.", "Hast du die Straße gesehen?",
           "Ich weiß es nicht genau.", "Können wir morgen reden?", "Die Tür ist offen."],
    "ru": ["Привет, как дела?", "Мы должны были уйти до дождя.", "Я не знаю, что сказать.",
           "Где ты был вчера вечером?", "Это очень хорошая идея.", "Давай поговорим завтра утром."],
    "ja": ["こんにちは、元気ですか？", "雨が降る前に出発するべきだった。", "何を言えばいいのか分からない。",
           "昨日の夜はどこにいたの？", "それはとてもいい考えですね。", "明日の朝に話しましょう。"],
    "zh": ["你好，你今天怎么样？", "我们应该在下雨之前离开。", "我不知道该说什么。",
           "你昨天晚上去哪里了？", "这是一个很好的主意。", "我们明天早上再谈吧。"],
}
LEGACY = {"fr": "cp1252", "es": "cp1252", "de": "cp1252", "ru": "cp1251", "ja": "shift_jis", "zh": "gb18030"}
# the short cp1252 subtitle of the issue: a few accents (é, à, ï, ñ) came out Baltic ("à" as "ą")
ISSUE = ["Le café est à côté.", "Il est naïf, le niño."]


def srt(cues: list[str]) -> str:
    blocks = []
    for i, text in enumerate(cues):
        s = 1 + 3 * i
        blocks.append(f"{i + 1}\r\n00:00:{s:02d},000 --> 00:00:{s + 2:02d},500\r\n{text}\r\n")
    return "\r\n".join(blocks)


def cues(lang: str, long: bool) -> list[str]:
    base = TEXTS[lang]
    return (base * 3)[:18] if long else base[:2]


def encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-16-be+bom":
        return b"\xfe\xff" + text.encode("utf-16-be")
    if encoding == "utf-16-le+bom":
        return b"\xff\xfe" + text.encode("utf-16-le")
    return text.encode(encoding)


def read(tmp_path, data: bytes, name: str = "x.srt"):
    p = tmp_path / name
    p.write_bytes(data)
    return read_subtitle_file(p)


@pytest.mark.parametrize("long", [False, True], ids=["short", "long"])
@pytest.mark.parametrize("lang", list(TEXTS))
def test_legacy_encodings_decode_exactly(tmp_path, lang, long):
    want = cues(lang, long)
    doc = read(tmp_path, encode(srt(want), LEGACY[lang]))
    assert [ln.text for ln in doc.lines] == want, doc.encoding
    assert doc.encoding == LEGACY[lang]
    if long or lang in ("fr", "es", "de", "ja"):
        assert not doc.encoding_unsure, doc.encoding_info


@pytest.mark.parametrize("encoding,label", [
    ("utf-16", "utf-16"), ("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be"), ("utf-16-le+bom", "utf-16"),
    ("utf-16-be+bom", "utf-16"), ("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8"),
])
@pytest.mark.parametrize("lang", list(TEXTS))
def test_unicode_encodings_with_and_without_bom(tmp_path, lang, encoding, label):
    for long in (False, True):
        want = cues(lang, long)
        doc = read(tmp_path, encode(srt(want), encoding))
        assert [ln.text for ln in doc.lines] == want
        assert doc.encoding == label and not doc.encoding_unsure


def test_the_short_cp1252_subtitle_of_the_issue_is_western(tmp_path):
    doc = read(tmp_path, srt(ISSUE).encode("cp1252"))
    assert [ln.text for ln in doc.lines] == ISSUE
    assert doc.encoding == "cp1252" and not doc.encoding_unsure
    for text in ["Voilà.", "Il est naïf.", "Le maïs à côté", "Héloïse à Madrid", "Où est la piñata ?"]:
        d = detect(srt([text]).encode("cp1252"))
        assert d.encoding == "cp1252" and text in d.text, (text, d.encoding, d.text)


def test_language_hint_picks_the_central_european_reading():
    polish = srt(["Dzień dobry, proszę pana.", "Zażółć gęślą jaźń."]).encode("cp1250")
    assert detect(polish).unsure  # Polish in cp1250 also reads as cp1252 letters: a close call, said so
    hinted = detect(polish, language="pl")
    assert hinted.encoding == "cp1250" and "Zażółć gęślą jaźń." in hinted.text


def test_unsure_detection_lists_candidates_with_samples():
    lithuanian = srt(["Labas rytas, kaip sekasi?", "Ąžuolas žaliuoja, ačiū."]).encode("cp1257")
    d = detect(lithuanian)
    assert d.unsure
    names = [c.encoding for c in d.candidates]
    assert "cp1257" in names and names[0] == d.encoding
    right = next(c for c in d.candidates if c.encoding == "cp1257")
    assert "Ąžuolas žaliuoja, ačiū." in right.sample
    assert len({c.sample for c in d.candidates}) == len(d.candidates)  # each candidate reads differently


def test_forced_encoding_and_its_refusals(tmp_path):
    data = srt(ISSUE).encode("cp1252")
    p = tmp_path / "x.srt"
    p.write_bytes(data)
    assert [ln.text for ln in read_subtitle_file(p, encoding="CP-1257").lines][0] == "Le café est ą cōté."
    with pytest.raises(BadInputError, match="unknown text encoding 'klingon'"):
        read_subtitle_file(p, encoding="klingon")
    with pytest.raises(BadInputError, match=r"x\.srt is not valid utf-8 text \(byte 0xe9"):
        read_subtitle_file(p, encoding="utf-8")


LITHUANIAN = ["Labas rytas, kaip sekasi?", "Ąžuolas žaliuoja, ačiū."]


@pytest.fixture
def unsure_item(movie, tmp_path):
    """The fixture movie's dialogue imported with a Lithuanian cp1257 subtitle (an unsure guess)."""
    sub = tmp_path / "lt.srt"
    sub.write_bytes(srt(LITHUANIAN).encode("cp1257"))
    svc = Service(home=tmp_path / "home")
    out = svc.ingest(str(movie.dialogue_wav), subtitles=str(sub), analyze=False)
    return svc, out.result["media_id"], out


def test_unsure_track_is_recorded_and_the_users_pick_replaces_its_lines(unsure_item):
    svc, mid, out = unsure_item
    assert any("subtitle encoding unsure" in w for w in out.result["warnings"])
    (track,) = svc.show_media(mid)["subtitle_tracks"]
    assert track["encoding_unsure"] and track["encoding_info"]["candidates"]
    assert [s["text"] for s in svc.segments(mid)] != LITHUANIAN
    seg_ids = [s["id"] for s in svc.segments(mid)]
    svc.reassign_line(seg_ids[0], "Ona")
    svc.edit_line_text(seg_ids[1], "Typed by the user.")
    res = svc.set_subtitle_encoding(track["id"], "cp1257")
    assert res == {"track": track["id"], "media_id": mid, "encoding": "cp1257", "lines": 2, "changed": 1, "rebuilt": False}
    assert [ln["text"] for ln in svc.lines(mid)] == LITHUANIAN
    segs = svc.segments(mid)
    assert [s["id"] for s in segs] == seg_ids  # same item, same segments
    assert segs[0]["character"] == "Ona" and segs[1]["text"] == "Typed by the user."  # user values stay
    (track,) = svc.show_media(mid)["subtitle_tracks"]
    assert track["encoding"] == "cp1257" and not track["encoding_unsure"]
    assert track["encoding_info"]["method"] == "user" and track["encoding_info"]["candidates"]
    svc.undo(mid)
    assert svc.segments(mid)[1]["text"] == LITHUANIAN[1]  # the automatic text under the edit is the new reading


def test_set_encoding_refusals_keep_the_track(unsure_item, movie):
    svc, mid, _ = unsure_item
    (track,) = svc.show_media(mid)["subtitle_tracks"]
    before = svc.lib.counts(), svc.lines(mid)
    with pytest.raises(BadInputError, match="unknown text encoding"):
        svc.set_subtitle_encoding(track["id"], "nope")
    with pytest.raises(BadInputError, match="not valid utf-8"):
        svc.set_subtitle_encoding(track["id"], "utf-8")
    embedded = svc.ingest(str(movie.movie), analyze=False).result["media_id"]
    (etrack,) = svc.show_media(embedded)["subtitle_tracks"]
    with pytest.raises(BadInputError, match="is an embedded stream"):
        svc.set_subtitle_encoding(etrack["id"], "cp1252")
    assert svc.lines(mid) == before[1]
    assert svc.show_media(mid)["subtitle_tracks"][0]["encoding"] == track["encoding"]


def test_cli_ingest_with_subtitle_encoding_and_encoding_command(movie, tmp_path):
    sub = tmp_path / "lt.srt"
    sub.write_bytes(srt(LITHUANIAN).encode("cp1257"))
    env = {**os.environ, "WEAVER_HOME": str(tmp_path / "home")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "trayapp", *map(str, a)], capture_output=True, text=True,  # noqa: E731
                                    env=env, timeout=300)
    bad = run("ingest", movie.dialogue_wav, "--subtitles", sub, "--subtitle-encoding", "klingon", "--no-analysis")
    assert bad.returncode == 2 and "unknown text encoding 'klingon'" in bad.stderr
    assert not (tmp_path / "home" / "media").exists() or not any((tmp_path / "home" / "media").iterdir())
    r = run("ingest", movie.dialogue_wav, "--subtitles", sub, "--subtitle-encoding", "cp1257", "--no-analysis")
    assert r.returncode == 0, r.stderr
    mid = int(r.stdout.strip().splitlines()[-1])
    svc = Service(home=tmp_path / "home")
    assert [ln["text"] for ln in svc.lines(mid)] == LITHUANIAN
    (track,) = svc.show_media(mid)["subtitle_tracks"]
    assert track["encoding"] == "cp1257" and track["encoding_info"]["method"] == "user"
    r = run("encoding", track["id"], "cp1252")
    assert r.returncode == 0 and "read as cp1252, 1 of 2 lines changed" in r.stdout
    assert svc.lines(mid)[1]["text"] == "Ąžuolas žaliuoja, ačiū.".encode("cp1257").decode("cp1252")
    shown = run("encoding", track["id"])
    assert shown.returncode == 0 and "cp1252 (picked by the user)" in shown.stdout


def test_panel_routes_show_and_set_the_encoding(unsure_item):
    from web_ui.server import PanelServer

    svc, mid, _ = unsure_item
    (track,) = svc.show_media(mid)["subtitle_tracks"]
    server = PanelServer(home=svc.lib.home).start()
    try:
        h = {"Authorization": f"Bearer {server.token}"}
        base = f"http://127.0.0.1:{server.port}"
        info = httpx.get(f"{base}/api/subtitle-tracks/{track['id']}/encoding", headers=h).json()
        assert info["unsure"] and "cp1257" in [c["encoding"] for c in info["candidates"]]
        r = httpx.post(f"{base}/api/subtitle-tracks/{track['id']}/encoding", headers=h, json={"encoding": "martian"})
        assert r.status_code == 400 and "unknown text encoding" in r.json()["error"]
        r = httpx.post(f"{base}/api/subtitle-tracks/{track['id']}/encoding", headers=h, json={"encoding": "cp1257"})
        assert r.status_code == 200 and r.json()["changed"] == 1
        assert [ln["text"] for ln in httpx.get(f"{base}/api/media/{mid}/lines", headers=h).json()] == LITHUANIAN
    finally:
        server.stop()
