"""Screenplay parsing: plain-text layout, Fountain, PDF (text layer / scanned), FDX, subtitles, bad inputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pipeline.errors import BadInputError
from pipeline.text.scripts import parse_script, parse_script_text
from tests.fixtures.bad_inputs import make_image_only_pdf, make_unknown_layout_txt, write_text_pdf
from tests.fixtures.movie import SCRIPT, _Say, fountain_text, screenplay_text

STRUCTURE_ERR = r"could not find screenplay structure \(character cues \+ dialogue\) in "

TRUTH = [(si + 1, it) for si, (_, items) in enumerate(SCRIPT) for it in items if isinstance(it, _Say)]


def _rows(script):
    return [(ln.scene, ln.character, ln.extension, ln.parenthetical, ln.text) for ln in script.lines]


def _truth_rows():
    return [(scene, s.character, s.extension, s.parenthetical, s.text) for scene, s in TRUTH]


def test_plain_text_layout_matches_the_fixture_script():
    sc = parse_script_text(screenplay_text())
    assert sc.format == "screenplay" and sc.title == "THE WINTER FARM"
    assert _rows(sc) == _truth_rows()
    assert [ln.index for ln in sc.lines] == list(range(len(TRUTH)))
    assert sc.characters == ["BORIS", "ALICE", "CLARA"]


def test_fountain_matches_the_fixture_script(tmp_path):
    p = tmp_path / "s.fountain"
    p.write_text(fountain_text(), encoding="utf-8")
    sc = parse_script(p)
    assert sc.format == "fountain" and sc.title == "The Winter Farm"
    assert _rows(sc) == _truth_rows()
    assert parse_script_text(fountain_text()).format == "fountain"  # detected from the title page


def test_text_pdf_keeps_layout(tmp_path):
    pdf = write_text_pdf(tmp_path / "screenplay.pdf", screenplay_text())
    sc = parse_script(pdf)
    assert sc.format == "pdf" and sc.title == "THE WINTER FARM"
    assert _rows(sc) == _truth_rows()


def test_image_only_pdf_says_run_ocr(tmp_path):
    from PIL import Image, ImageDraw

    img = Image.new("L", (850, 1100), 255)
    ImageDraw.Draw(img).text((100, 100), "INT. HOUSE - DAY\n\n      JOHN\n   Hello.", fill=0)
    p = tmp_path / "scan.pdf"
    img.save(p, "PDF", resolution=100)
    with pytest.raises(BadInputError, match=r"PDF has no text layer \(scanned\?\); run OCR first, e.g. ocrmypdf"):
        parse_script(p)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage garbage\n")
    with pytest.raises(BadInputError, match="broken.pdf"):
        parse_script(tmp_path / "broken.pdf")


FOUNTAIN = """Title:
    _**BRICK & STEEL**_
    _**FULL RETIRED**_
Credit: Written by
Author: Stu Maschwitz

/* This whole scene
was cut.

OLD MAN
Never mind.
*/

EXT. BRICK'S PATIO - DAY

A gorgeous day. [[Add more here.]] Birds sing.

!SILENCE.
The birds stop.

@McCLANE
Yippee ki-yay! I mean, *really*.

STEEL
(beat)
Beer's ready!
(smiling)
Cold, too.

BRICK
Are they cold?

STEEL ^
Yes they are.

.FLASHBACK

BRICK (V.O.) (cont'd)
~Sing a song
~of sixpence

> CUT TO:

> THE END <

#Act 2

= synopsis here

2A EXT. ROOF - NIGHT 2A

STEEL
Two spaces keep
  
it going.

[[A note
over two lines]]
BRICK
Fine.
"""


def test_fountain_forced_elements_notes_boneyard_dual_and_title_page():
    sc = parse_script_text(FOUNTAIN, "fountain")
    assert sc.title == "BRICK & STEEL FULL RETIRED"
    assert _rows(sc) == [
        (1, "McCLANE", None, None, "Yippee ki-yay! I mean, really."),
        (1, "STEEL", None, "beat; smiling", "Beer's ready! Cold, too."),
        (1, "BRICK", None, None, "Are they cold?"),
        (1, "STEEL", None, None, "Yes they are."),  # ^ dual dialogue marker stripped
        (2, "BRICK", "V.O., CONT'D", None, "Sing a song of sixpence"),  # .FLASHBACK forced heading, lyrics
        (3, "STEEL", None, None, "Two spaces keep it going."),  # scene-numbered heading
        (3, "BRICK", None, None, "Fine."),
    ]
    assert "OLD MAN" not in sc.characters and "SILENCE." not in sc.characters


LAYOUT = """12   INT. HOUSE - DAY   12

     John walks in. He drops his keys.

                         JOHN                   MARY
               Hello?                    Hi there, how
                                         was work?

                         JOHN
               Long day. I had
               to stay late.
                              (MORE)
\f                                                        14.
                         JOHN (CONT'D)
               Really late.

                                                   CUT TO:
13   EXT. STREET - NIGHT   13

     THE DOOR SLAMS SHUT.
     Mary jumps.

                         MARY
                  (whispering,
                   scared)
               Who's there?
                         MARY (VO)
               Nobody answered.
     BANG!
     She runs.
"""


def test_indented_layout_dual_dialogue_page_breaks_and_scene_numbers():
    sc = parse_script_text(LAYOUT)
    assert _rows(sc) == [
        (1, "JOHN", None, None, "Hello?"),
        (1, "MARY", None, None, "Hi there, how was work?"),
        (1, "JOHN", None, None, "Long day. I had to stay late. Really late."),  # (MORE) / (CONT'D) joined
        (2, "MARY", None, "whispering, scared", "Who's there?"),
        (2, "MARY", "V.O.", None, "Nobody answered."),
    ]
    assert sc.characters == ["JOHN", "MARY"]


def test_flush_left_plain_screenplay_and_lines_before_the_first_heading():
    sc = parse_script_text(
        "NARRATOR (V.O.)\nLong ago.\n\nINT. HOUSE - DAY\n\nJohn walks in.\n\nJOHN\nHello? Anybody\nhome?\n\n"
        "MARY (O.S.)\nIn here!\n\nCUT TO:\n\nEXT. YARD - DAY\n\nJOHN\nWhere?\n"
    )
    assert sc.format == "screenplay" and sc.title is None
    assert _rows(sc) == [
        (0, "NARRATOR", "V.O.", None, "Long ago."),
        (1, "JOHN", None, None, "Hello? Anybody home?"),
        (1, "MARY", "O.S.", None, "In here!"),
        (2, "JOHN", None, None, "Where?"),
    ]


FDX = """<?xml version="1.0" encoding="UTF-8" standalone="no" ?>
<FinalDraft DocumentType="Script" Template="No" Version="5">
<Content>
<Paragraph Type="Scene Heading"><Text>INT. BAR - NIGHT</Text></Paragraph>
<Paragraph Type="Action"><Text>Smoke.</Text></Paragraph>
<Paragraph Type="Character"><Text>Rick (V.O.)</Text></Paragraph>
<Paragraph Type="Parenthetical"><Text>(quietly)</Text></Paragraph>
<Paragraph Type="Dialogue"><Text>Of all the gin </Text><Text Style="Italic">joints</Text></Paragraph>
<Paragraph Type="Character"><Text>ILSA</Text></Paragraph>
<Paragraph Type="Dialogue"><Text>Play it.</Text></Paragraph>
</Content>
</FinalDraft>
"""


def test_final_draft_fdx(tmp_path):
    p = tmp_path / "s.fdx"
    p.write_text(FDX, encoding="utf-8")
    sc = parse_script(p)
    assert sc.format == "fdx"
    assert _rows(sc) == [(1, "Rick", "V.O.", "quietly", "Of all the gin joints"), (1, "ILSA", None, None, "Play it.")]


def test_encodings_cp1252_and_utf16(tmp_path):
    text = screenplay_text()
    for enc in ("cp1252", "utf-16"):
        p = tmp_path / f"s.{enc}.txt"
        p.write_bytes(text.replace("\u00ef", "\u00ef").encode(enc))
        sc = parse_script(p)
        assert _rows(sc) == _truth_rows(), enc
        assert any("caf\u00e9" in ln.text for ln in sc.lines) and any("na\u00efve" in ln.text for ln in sc.lines)


SDH = """1
00:00:01,000 --> 00:00:02,000
[rain]

2
00:00:02,000 --> 00:00:04,000
ALICE: Who's there?

3
00:00:04,500 --> 00:00:06,000
- BORIS: Me.
- ALICE (V.O.): Of course.

4
00:00:07,000 --> 00:00:08,000
No cue on this one.
"""


def test_subtitle_files_become_scripts_via_sdh_cues(tmp_path):
    p = tmp_path / "movie.sdh.srt"
    p.write_text(SDH, encoding="utf-8")
    sc = parse_script(p)
    assert sc.format == "subtitles"
    assert [(ln.index, ln.character, ln.text) for ln in sc.lines] == [(0, "ALICE", "Who's there?"), (1, "BORIS", "Me."), (2, "ALICE", "Of course.")]
    assert parse_script_text(SDH).characters == ["ALICE", "BORIS"]  # detected as subtitles from the content
    q = tmp_path / "plain.srt"
    q.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello.\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=STRUCTURE_ERR + "plain.srt"):
        parse_script(q)


def test_unknown_layouts_and_bad_files(tmp_path):
    with pytest.raises(BadInputError, match=STRUCTURE_ERR + "grandmas_soup.txt"):
        parse_script(make_unknown_layout_txt(tmp_path))
    recipe = tmp_path / "recipe.txt"
    recipe.write_text("Pancakes\n\nINGREDIENTS\n2 cups flour\n1 egg\n\nMETHOD\nMix and fry.\n\nSERVING\nHot.\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=STRUCTURE_ERR + "recipe.txt"):
        parse_script(recipe)
    with pytest.raises(BadInputError, match=STRUCTURE_ERR + "notes"):
        parse_script_text("JOHN\nHello.\n", source="notes")  # a single line is not a screenplay
    (tmp_path / "empty.fountain").write_bytes(b"")
    with pytest.raises(BadInputError, match="empty file: empty.fountain"):
        parse_script(tmp_path / "empty.fountain")
    with pytest.raises(BadInputError, match="no such script file"):
        parse_script(tmp_path / "nope.txt")


def test_long_script_parses_fast():
    one = screenplay_text()
    text = "\n".join(one.split("FADE IN:", 1)[1] for _ in range(60))  # ~4800 lines, ~120 pages
    t0 = time.perf_counter()
    sc = parse_script_text(text)
    took = time.perf_counter() - t0
    print(f"{len(text.splitlines())} lines, {len(sc.lines)} script lines parsed in {took:.3f} s")
    assert len(sc.lines) == 60 * len(TRUTH) and sc.lines[-1].scene == 60 * len(SCRIPT)
    assert took < 3.0


# ------------------------------------------------------------------------------------- the generated fixture movie


def test_fixture_files_match_truth_json(movie, tmp_path):
    truth = json.loads(Path(movie.truth_json).read_text())
    want = [(t["scene"], t["character"], t["extension"], t["parenthetical"], t["text"]) for t in truth]
    chars = list(dict.fromkeys(t["character"] for t in truth))
    for path in (movie.screenplay_txt, movie.fountain, write_text_pdf(tmp_path / "movie.pdf", Path(movie.screenplay_txt).read_text("utf-8"))):
        sc = parse_script(path)
        assert _rows(sc) == want, path
        assert sc.characters == chars
    with pytest.raises(BadInputError, match="PDF has no text layer"):
        parse_script(make_image_only_pdf(tmp_path, movie))
    sdh = parse_script(movie.sdh_srt)
    assert sdh.format == "subtitles" and set(sdh.characters) == set(chars)
    spoken = [t["text"] for t in truth]
    for ln in sdh.lines:  # each SDH-cued line is the true line of that character
        assert truth[spoken.index(ln.text)]["character"] == ln.character
