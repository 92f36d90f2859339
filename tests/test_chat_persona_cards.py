"""Persona drafting, Character Card V2 (JSON + PNG) round trips and malformed cards, chat tables."""

from __future__ import annotations

import base64
import io
import json
import sqlite3

import pytest
import sqlite_utils
from PIL import Image, PngImagePlugin

from pipeline.chat import cards
from pipeline.chat.persona import MAX_EXAMPLES_CHARS, Persona, clean_line, draft_persona, select_lines
from pipeline.library.chat import (
    append_message, create_conversation, create_tables, delete_persona, history, list_conversations,
    list_personas, load_persona, save_persona,
)
from pipeline.errors import BadInputError, NotFoundError

FILM_LINES = (
    ["- RICK: Here's looking at you, kid.", "[piano plays] Of all the gin joints in all the towns in all the world, she walks into mine."]
    + [f"Line {i}: the fog rolls over the airfield number {i}." for i in range(200)]
    + ["We'll always have Paris.", "We'll always have Paris.", "Okay.", "Louis, I think this is the beginning of a beautiful friendship."]
)


def test_persona_contains_name_title_and_own_lines():
    p = draft_persona("Rick", FILM_LINES, "Casablanca", sample=12)
    assert p.name == "Rick" and p.source_title == "Casablanca"
    assert "Rick" in p.system_prompt and "Casablanca" in p.system_prompt
    assert 1 <= len(p.example_lines) <= 12
    for line in p.example_lines:
        assert line in p.system_prompt
    # cleaned: no SDH tags, cues or dashes; no duplicates
    assert not any(x.startswith(("-", "[", "RICK:")) for x in p.example_lines)
    assert len(set(p.example_lines)) == len(p.example_lines)


def test_sample_spreads_across_the_film_and_prefers_long_lines():
    lines = [f"short {i}." if i % 2 else f"A much longer and more distinctive line about topic {i} and its consequences." for i in range(300)]
    picked = select_lines(lines, sample=10)
    nums = sorted(int(x.split("topic ")[1].split(" ")[0]) for x in picked)
    assert len(picked) == 10 and all("topic" in x for x in picked)
    assert nums[0] < 30 and nums[-1] > 270  # both ends of the film are represented


def test_sample_is_length_capped_and_seeded():
    lines = [("word%d " % i) * 80 for i in range(100)]
    a = select_lines(lines, sample=40, seed=1)
    assert a == []  # 560-character lines with no sentence end: no fragment is made up
    long = [f"Sentence one of speech {i} is here. " * 12 for i in range(100)]
    b = select_lines(long, sample=40, seed=1)
    assert b and sum(len(x) for x in b) <= MAX_EXAMPLES_CHARS
    assert all(len(x) <= 200 and x.endswith(".") and x in long[int(x.split()[4])] for x in b)  # whole sentences
    assert select_lines(long, sample=40, seed=1) == b


def test_examples_are_whole_lines_not_fragments():
    lines = ["I came to Casablanca", "for the waters.", "Of all the gin joints in all the towns, she walks into mine.",
             "and then", "Round up the usual suspects.", "We'll always have Paris.", "because"]
    picked = select_lines(lines, sample=10)
    assert "I came to Casablanca for the waters." in picked  # split cues joined into the line
    assert all(x[0].isupper() and x.endswith(".") for x in picked), picked
    assert not any(x in ("and then", "because", "for the waters.") for x in picked)


def test_clean_line_and_bad_inputs():
    assert clean_line("- JOHN: (sighs) <i>Hello</i>\\Nworld ♪") == "Hello world"
    with pytest.raises(BadInputError):
        draft_persona("  ", ["hi"])
    p = draft_persona("Nobody", [], None)
    assert p.example_lines == [] and "Nobody" in p.system_prompt


# -- cards ----------------------------------------------------------------------------------------------
def _persona() -> Persona:
    p = draft_persona("Ilsa", ["Play it, Sam.", "Kiss me. Kiss me as if it were the last time."], "Casablanca")
    p.voice, p.provider, p.model, p.temperature = "ilsa-v1", "ollama", "llama3.2", 0.6
    p.greeting = "Hello, {{user}}."
    return p


def test_json_card_round_trip_and_spec_fields(tmp_path):
    p = _persona()
    path = cards.export_card(p, tmp_path / "ilsa.json")
    card = json.loads(path.read_text(encoding="utf-8"))
    assert card["spec"] == "chara_card_v2" and card["spec_version"] == "2.0"
    data = card["data"]
    for key in ("name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
                "system_prompt", "post_history_instructions", "alternate_greetings", "tags", "creator",
                "character_version", "extensions"):
        assert key in data
    assert data["extensions"]["voice_weaver"] == {"voice": "ilsa-v1", "provider": "ollama", "model": "llama3.2",
                                                  "temperature": 0.6, "options": {}, "source_title": "Casablanca"}
    assert "{{char}}: Play it, Sam." in data["mes_example"]
    q = cards.import_card(path)
    assert (q.name, q.voice, q.provider, q.model, q.temperature) == ("Ilsa", "ilsa-v1", "ollama", "llama3.2", 0.6)
    assert sorted(q.example_lines) == sorted(p.example_lines)
    assert q.system_prompt == p.system_prompt
    assert q.greeting == "Hello, the user."


def test_png_card_round_trip_keeps_foreign_fields(tmp_path):
    foreign = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Sam", "description": "{{char}} plays piano for {{user}}.", "personality": "calm", "scenario": "a bar",
        "first_mes": "Evening.", "mes_example": "<START>\n{{user}}: Play it.\n{{char}}: I don't remember it.\n",
        "creator_notes": "", "system_prompt": "", "post_history_instructions": "stay short",
        "alternate_greetings": ["Hi."], "character_book": {"entries": []}, "tags": ["jazz"], "creator": "x",
        "character_version": "3", "extensions": {"depth_prompt": {"depth": 4}}}}
    img = Image.new("RGB", (64, 96), (10, 20, 30))
    info = PngImagePlugin.PngInfo()
    info.add_text("chara", base64.b64encode(json.dumps(foreign).encode()).decode())
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)

    p = cards.read_card(buf.getvalue())
    assert p.name == "Sam" and p.greeting == "Evening." and p.example_lines == ["I don't remember it."]
    assert "Sam plays piano for the user." in p.system_prompt and "calm" in p.system_prompt
    p.voice = "sam"
    out = cards.write_card_png(p, avatar=img)
    with Image.open(io.BytesIO(out)) as im:
        im.load()
        assert im.size == (64, 96)
        card = json.loads(base64.b64decode(im.text["chara"]))
    d = card["data"]
    assert d["character_book"] == {"entries": []} and d["alternate_greetings"] == ["Hi."] and d["tags"] == ["jazz"]
    assert d["extensions"]["depth_prompt"] == {"depth": 4} and d["extensions"]["voice_weaver"]["voice"] == "sam"
    assert d["post_history_instructions"] == "stay short" and d["creator"] == "x"


def test_png_with_placeholder_avatar(tmp_path):
    path = cards.export_card(_persona(), tmp_path / "ilsa.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert cards.import_card(path).voice == "ilsa-v1"


def _png(text_chunks: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in text_chunks.items():
        info.add_text(k, v)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


@pytest.mark.parametrize("data,needle", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not an object"),
    (json.dumps({"spec": "chara_card_v3", "data": {"name": "x"}}).encode(), "spec is 'chara_card_v3'"),
    (json.dumps({"name": "legacy v1"}).encode(), "no 'spec' field"),
    (json.dumps({"spec": "chara_card_v2", "data": {"description": "no name"}}).encode(), "no character name"),
    (json.dumps({"spec": "chara_card_v2", "data": {"name": "   "}}).encode(), "no character name"),
    (json.dumps({"spec": "chara_card_v2", "data": {"name": 5}}).encode(), "must be text"),
    (json.dumps({"spec": "chara_card_v2"}).encode(), "no 'data' object"),
    (b"\xff\xfe\x00garbage", "neither a PNG nor UTF-8 JSON"),
    (_png({"Title": "just a picture"}), "no 'chara' text chunk"),
    (_png({"chara": "@@@ not base64 @@@"}), "not valid base64"),
    (_png({"chara": base64.b64encode(b"{oops").decode()}), "not valid JSON"),
])
def test_malformed_cards_raise_one_line(data, needle):
    with pytest.raises(BadInputError) as ei:
        cards.read_card(data)
    assert needle in str(ei.value) and "\n" not in str(ei.value)


def test_truncated_png_and_missing_file(tmp_path):
    good = cards.write_card_png(_persona())
    with pytest.raises(BadInputError):
        cards.read_card(good[:200])
    with pytest.raises(BadInputError, match="not found"):
        cards.import_card(tmp_path / "nope.png")


# -- schema ---------------------------------------------------------------------------------------------
@pytest.fixture()
def db(tmp_path):
    conn = sqlite3.connect(str(tmp_path / "library.db"))
    d = sqlite_utils.Database(conn)
    d.execute("PRAGMA foreign_keys=ON")
    create_tables(d)
    create_tables(d)  # idempotent
    yield d
    conn.close()


def test_schema_personas_conversations_messages(db):
    p = _persona()
    p.character_id = 42  # loose reference: no characters table needed
    pid = save_persona(db, p)
    assert p.id == pid
    q = load_persona(db, pid)
    assert (q.name, q.voice, q.example_lines, q.character_id, q.greeting) == ("Ilsa", "ilsa-v1", p.example_lines, 42, p.greeting)
    q.system_prompt = "edited"
    save_persona(db, q)
    assert load_persona(db, pid).system_prompt == "edited"
    assert [x.id for x in list_personas(db, character_id=42)] == [pid]

    cid = create_conversation(db, pid, "first chat")
    append_message(db, cid, "user", "hi")
    append_message(db, cid, "assistant", "Hello th", partial=True, meta={"error": "died"})
    assert history(db, cid) == [{"role": "user", "content": "hi", "partial": False},
                                {"role": "assistant", "content": "Hello th", "partial": True}]
    assert list_conversations(db, pid)[0]["messages"] == 2
    with pytest.raises(sqlite3.IntegrityError):
        append_message(db, cid, "narrator", "x")
    with pytest.raises(NotFoundError):
        append_message(db, 999, "user", "x")
    with pytest.raises(NotFoundError):
        load_persona(db, 999)
    delete_persona(db, pid)
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_schema_runs_inside_the_store_migration_transaction(tmp_path):
    """create_tables uses plain SQL only, so it can run between BEGIN IMMEDIATE and COMMIT."""
    conn = sqlite3.connect(str(tmp_path / "m.db"), isolation_level=None)
    d = sqlite_utils.Database(conn)
    d.execute("BEGIN IMMEDIATE")
    create_tables(d)
    d.execute("PRAGMA user_version=7")
    d.execute("COMMIT")
    assert {"personas", "conversations", "messages"} <= set(d.table_names())
