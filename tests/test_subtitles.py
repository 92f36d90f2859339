"""Subtitle reading: formats, encodings, tag cleaning, SDH metadata, dash splits, embedded streams, bad files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pipeline.errors import BadInputError
from pipeline.text.subtitles import (
    _decode_stream_ffmpeg,
    decode_text,
    extract_embedded_subtitles,
    read_subtitle_file,
    read_subtitle_text,
    write_srt,
)

SDH_SRT = """1
00:00:01,000 --> 00:00:03,000
<i>JOHN: Hello</i>
<font color="#ff0000">there.</font>

2
00:00:04,000 --> 00:00:06,000
- Hi.
- MARY: Hello there, friend.

3
00:00:07,000 --> 00:00:08,000
[door slams]

4
00:00:09,000 --> 00:00:10,000
JOHN (V.O.): [sighs] It was cold.
MRS. SMITH: Was it?

5
00:00:11,000 --> 00:00:12,000
\u266a la la la \u266a

6
00:00:13,000 --> 00:00:14,000
{\\an8}(whispering) Go now.
"""


def _by_text(doc):
    return [(ln.speaker_cue, ln.text, ln.tags) for ln in doc.lines]


def test_srt_tags_sdh_cues_and_dash_split():
    doc = read_subtitle_text(SDH_SRT)
    assert doc.format == "srt"
    assert _by_text(doc) == [
        ("JOHN", "Hello there.", []),
        (None, "Hi.", []),
        ("MARY", "Hello there, friend.", []),
        (None, "", ["door slams"]),  # tag-only cue kept with empty text
        ("JOHN", "It was cold.", ["sighs"]),
        ("MRS. SMITH", "Was it?", []),
        (None, "", ["\u266a la la la \u266a"]),
        (None, "Go now.", ["whispering"]),
    ]
    assert [ln.index for ln in doc.lines] == list(range(8))
    # the dash cue shares 4.0-6.0 in proportion to text length ("Hi." 3 chars vs 20)
    hi, hello = doc.lines[1], doc.lines[2]
    assert hi.start == 4.0 and hello.end == 6.0 and hi.end == hello.start
    assert hi.end == pytest.approx(4.0 + 2.0 * 3 / 23, abs=0.002)
    assert [ln.text for ln in doc.dialogue] == ["Hello there.", "Hi.", "Hello there, friend.", "It was cold.", "Was it?", "Go now."]
    assert doc.speakers == ["JOHN", "MARY", "MRS. SMITH"]


def test_inline_dashes_and_second_name_cue_split_a_cue():
    doc = read_subtitle_text("1\n00:00:00,000 --> 00:00:02,000\n- Are you in? - Yes!\n\n"
                             "2\n00:00:03,000 --> 00:00:05,000\nANNA: Ready?\nBEN: Always.\n")
    assert [(ln.speaker_cue, ln.text) for ln in doc.lines] == [(None, "Are you in?"), (None, "Yes!"), ("ANNA", "Ready?"), ("BEN", "Always.")]
    assert doc.lines[1].end == 2.0 and doc.lines[2].start == 3.0
    # time words and lower-case colons are not name cues
    doc = read_subtitle_text("1\n00:00:00,000 --> 00:00:02,000\nMeet me at 10:30: sharp.\n\n2\n00:00:03,000 --> 00:00:04,000\nNote: bring cash.\n")
    assert [ln.speaker_cue for ln in doc.lines] == [None, None]
    assert doc.lines[1].text == "Note: bring cash."


ASS = r"""[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:05.00,0:00:06.00,Default,,0,0,0,,{\p1}m 0 0 l 100 0 100 100 0 100{\p0}Sign text
Dialogue: 0,0:00:01.00,0:00:02.50,Default,,0,0,0,,{\an8}{\i1}Hello{\i0}\Nthere\hfriend
Dialogue: 1,0:00:01.00,0:00:02.50,Default,,0,0,0,,{\an8}{\i1}Hello{\i0}\Nthere\hfriend
Dialogue: 0,0:00:03.00,0:00:04.00,Default,Bob,0,0,0,,I'm {\b1}Bob{\b0}.
Comment: 0,0:00:05.00,0:00:06.00,Default,,0,0,0,,a comment
Dialogue: 0,0:00:07.00,0:00:08.00,Default,,0,0,0,,{\pos(10,10)\p1}m 0 0 l 10 10
"""


def test_ass_override_tags_drawings_comments_actor_and_layer_duplicates():
    doc = read_subtitle_text(ASS)
    assert doc.format == "ass"
    assert [(ln.start, ln.end, ln.text, ln.speaker_cue) for ln in doc.lines] == [
        (1.0, 2.5, "Hello there friend", None),  # the layer-1 copy is dropped
        (3.0, 4.0, "I'm Bob.", "BOB"),  # ASS Name/Actor field
        (5.0, 6.0, "Sign text", None),  # drawing commands gone, comment event skipped, drawing-only event dropped
    ]


VTT = """WEBVTT
Kind: captions

NOTE a comment
spanning lines

intro
00:01.000 --> 00:02.000 align:start position:10%
<v Roger Bingham>We are in New York &amp; more</v>

00:00:03.000 --> 00:00:04.500
<c.yellow>Second</c> <00:03.500>line
"""


def test_webvtt_notes_ids_voices_entities():
    doc = read_subtitle_text(VTT)
    assert doc.format == "vtt"
    assert [(ln.start, ln.end, ln.text, ln.speaker_cue) for ln in doc.lines] == [
        (1.0, 2.0, "We are in New York & more", "ROGER BINGHAM"),
        (3.0, 4.5, "Second line", None),
    ]


def test_microdvd_default_fps(tmp_path):
    p = tmp_path / "a.sub"
    p.write_text("{0}{24}Hello|world\n{48}{72}{y:i}Second\n", encoding="utf-8")
    doc = read_subtitle_file(p)
    assert doc.format == "microdvd"
    assert [ln.text for ln in doc.lines] == ["Hello world", "Second"]
    assert doc.lines[1].start == pytest.approx(48 / 23.976, abs=0.002)


CAFE = "1\n00:00:01,000 --> 00:00:02,000\nUn caf\u00e9, s'il vous pla\u00eet.\n\n2\n00:00:03,000 --> 00:00:04,000\nYou were so na\u00efve.\n"


@pytest.mark.parametrize("encoding,label", [
    ("cp1252", "cp1252"), ("utf-16", "utf-16"), ("utf-8-sig", "utf-8-sig"), ("utf-16-le", "utf-16-le"), ("utf-8", "utf-8"),
])
def test_encodings(tmp_path, encoding, label):
    p = tmp_path / f"x.{encoding}.srt"
    p.write_bytes(CAFE.encode(encoding))
    doc = read_subtitle_file(p)
    assert doc.encoding == label
    assert [ln.text for ln in doc.lines] == ["Un caf\u00e9, s'il vous pla\u00eet.", "You were so na\u00efve."]


def test_short_cp1252_prefers_windows_1252():
    # charset-normalizer alone ties cp1250 with cp1252 on this little text and would answer "naďve"
    assert decode_text("So na\u00efve, the caf\u00e9.".encode("cp1252")) == ("So na\u00efve, the caf\u00e9.", "cp1252")
    czech = "P\u0159\u00edli\u0161 \u017elu\u0165ou\u010dk\u00fd k\u016f\u0148 \u00fap\u011bl \u010f\u00e1belsk\u00e9 \u00f3dy. \u0158ekl mi, \u017ee p\u0159ijde z\u00edtra."
    assert decode_text(czech.encode("cp1250"))[0] == czech


def test_malformed_empty_and_binary_files(tmp_path):
    from tests.fixtures.bad_inputs import make_malformed_srt

    with pytest.raises(BadInputError, match=r"malformed subtitles: no parseable cue in malformed\.srt"):
        read_subtitle_file(make_malformed_srt(tmp_path))
    cases = {
        "empty.srt": b"",
        "blank.srt": b" \n\n",
        "header.ass": b"[Script Info]\nScriptType: v4.00+\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n",
        "header.vtt": b"WEBVTT\n\n",
        "blankcues.srt": b"1\n00:00:01,000 --> 00:00:02,000\n\n\n2\n00:00:03,000 --> 00:00:04,000\n<i></i>\n",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(BadInputError, match=rf"no subtitle lines in {name.replace('.', '[.]')}"):
            read_subtitle_file(tmp_path / name)
    (tmp_path / "noise.srt").write_bytes(os.urandom(4096))
    with pytest.raises(BadInputError, match="noise.srt is not a text file"):
        read_subtitle_file(tmp_path / "noise.srt")
    (tmp_path / "prose.srt").write_text("Dear diary,\ntoday nothing happened.\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="no parseable cue in prose.srt"):
        read_subtitle_file(tmp_path / "prose.srt")
    with pytest.raises(BadInputError, match="no such subtitle file"):
        read_subtitle_file(tmp_path / "missing.srt")


def test_srt_without_blank_lines_and_numeric_text():
    doc = read_subtitle_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n2\n00:00:03,000 --> 00:00:04,000\nWorld\nagain\n"
                             "3\n00:00:05,000 --> 00:00:06,000\n42\n\n4\n00:00:07,000 --> 00:00:08,000\nlast\n")
    assert [(ln.start, ln.text) for ln in doc.lines] == [(1.0, "Hello"), (3.0, "World again"), (5.0, "42"), (7.0, "last")]


def test_sorted_and_renumbered_and_write_srt_round_trip(tmp_path):
    text = ("2\n00:00:05,000 --> 00:00:06,000\nSecond.\n\n1\n00:00:01,000 --> 00:00:02,000\nFirst.\n\n"
            "3\n00:00:03,000 --> 00:00:04,000\n[music]\n")
    doc = read_subtitle_text(text)
    assert [(ln.index, ln.text) for ln in doc.lines] == [(0, "First."), (1, ""), (2, "Second.")]
    lines = read_subtitle_text(SDH_SRT).lines
    out = write_srt(lines, tmp_path / "out" / "x.srt")
    back = read_subtitle_file(out)
    assert [(ln.start, ln.end, ln.text, ln.speaker_cue, ln.tags) for ln in back.lines] == [
        (ln.start, ln.end, ln.text, ln.speaker_cue, ln.tags) for ln in lines]
    plain = read_subtitle_file(write_srt(lines, tmp_path / "plain.srt", cues=False))
    assert [ln.text for ln in plain.lines] == [ln.text for ln in lines if ln.text]
    assert all(ln.speaker_cue is None for ln in plain.lines)
    assert not list((tmp_path / "out").glob("*.part"))


def _mux(tmp_path: Path, srt: Path, codec: str, name: str) -> Path:
    out = tmp_path / name
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-t", "8", "-i", "anullsrc=r=16000:cl=mono",
                    "-i", str(srt), "-map", "0:a", "-map", "1:s", "-c:a", "aac" if name.endswith(".mp4") else "pcm_s16le", "-c:s", codec,
                    "-metadata:s:s:0", "language=eng", str(out)], check=True)
    return out


@pytest.mark.parametrize("codec,name", [("srt", "a.mkv"), ("ass", "b.mkv"), ("webvtt", "c.mkv"), ("mov_text", "d.mp4")])
def test_embedded_text_streams(tmp_path, codec, name):
    srt = tmp_path / "in.srt"
    srt.write_text(SDH_SRT, encoding="utf-8")
    media = _mux(tmp_path, srt, codec, name)
    doc = extract_embedded_subtitles(media, 0)
    want = read_subtitle_text(SDH_SRT)
    assert [(ln.speaker_cue, ln.text, ln.tags) for ln in doc.lines] == _by_text(want)
    for a, b in zip(doc.lines, want.lines):
        assert abs(a.start - b.start) < 0.002 and abs(a.end - b.end) < 0.002
    assert doc.source.startswith("stream 0 of")
    with pytest.raises(BadInputError, match="subtitle stream 3 does not exist"):
        extract_embedded_subtitles(media, 3)


def test_ffmpeg_fallback_route(tmp_path):
    srt = tmp_path / "in.srt"
    srt.write_text(SDH_SRT, encoding="utf-8")
    media = _mux(tmp_path, srt, "srt", "a.mkv")
    doc = read_subtitle_text(_decode_stream_ffmpeg(media, 0), "ass")
    assert _by_text(doc) == _by_text(read_subtitle_text(SDH_SRT))


# ------------------------------------------------------------------------------------- the generated fixture movie


def test_fixture_sdh_srt_matches_truth(movie):
    truth = json.loads(Path(movie.truth_json).read_text())
    doc = read_subtitle_file(movie.sdh_srt)
    spoken = doc.dialogue
    assert [ln.text for ln in spoken] == [t["text"] for t in truth]
    assert set(doc.speakers) <= {t["character"] for t in truth} and len(doc.speakers) == 3
    for ln in spoken:  # every name cue names the true speaker of its line
        if ln.speaker_cue:
            t = truth[spoken.index(ln)]
            assert ln.speaker_cue == t["character"]
    tags = [tag for ln in doc.lines if not ln.text for tag in ln.tags]
    assert "door slams" in tags and any("music" in t for t in tags)
    # split dash cues land within 1 s of the true boundaries
    for ln, t in zip(spoken, truth):
        assert abs(ln.start - t["start"]) < 1.0 and abs(ln.end - t["end"]) < 1.0


def test_fixture_embedded_stream_and_cp1252(movie, tmp_path):
    from tests.fixtures.bad_inputs import CP1252_CREDIT, make_cp1252_srt

    doc = extract_embedded_subtitles(movie.movie, 0)
    assert len(doc.lines) == len(movie.lines)
    for ln, t in zip(doc.lines, movie.lines):
        assert ln.text == t.text and abs(ln.start - t.start) < 0.002 and abs(ln.end - t.end) < 0.002
    cp = read_subtitle_file(make_cp1252_srt(tmp_path, movie))
    assert cp.encoding == "cp1252"
    joined = " ".join(ln.text for ln in cp.lines)
    assert "caf\u00e9" in joined and "na\u00efve" in joined and cp.lines[-1].text == CP1252_CREDIT
