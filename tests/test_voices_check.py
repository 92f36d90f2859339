"""check_voice: white noise fails with reasons in words; the Piper default voice passes against its own clips;
a clear but different voice (espeak-ng) fails on similarity alone; the service stores the numbers and the verdict."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.voices import check, default_voice

pytestmark = pytest.mark.skipif(default_voice.piper_unavailable() is not None,
                                reason=f"neural default voice unavailable: {default_voice.piper_unavailable()}")
slow = pytest.mark.slow  # each check synthesises, transcribes and scores 3 sentences (≈10 s on 2 busy cores)

SENTENCES = list(check.HELD_OUT_SENTENCES)  # the service check uses these too: the default voice is measured once
REF_TEXTS = ["I have never seen such a strange little dog in all my life.",
             "We should leave before the storm reaches the harbour.",
             "Please remember to lock the door when you go out."]


@pytest.fixture(scope="module")
def piper_clips():
    """The 'character' here is the Piper voice itself: three clips of other sentences."""
    return [default_voice.speak(t, rate=None) for t in REF_TEXTS]


def white_noise(text: str) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(len(text))
    return np.clip(rng.standard_normal(16000 * 3) * 0.3, -1, 1).astype(np.float32), 16000


@slow
def test_white_noise_fails_with_reasons(piper_clips):
    r = check.check_voice(white_noise, piper_clips, SENTENCES)
    assert not r.ok
    assert r.wer > check.WER_MAX and r.dnsmos < check.DNSMOS_MIN
    assert any("words" in x and "WER" in x for x in r.reasons)
    assert any("noise" in x and "DNSMOS" in x for x in r.reasons)
    assert r.similarity is not None and r.default["similarity"] is not None and r.similarity < r.default["similarity"]
    assert "failed:" in r.summary() and r.sentences == 3


@slow
def test_piper_voice_passes_against_its_own_clips(piper_clips):
    r = check.check_voice(lambda t: default_voice.speak(t, rate=None), piper_clips, SENTENCES)
    assert r.ok, r.reasons
    # Piper samples its durations and noise, so tiny.en's WER on these 33 words moves by a word or two between runs
    assert r.reasons == [] and r.similarity > 0.85 and r.wer <= 0.25 and r.dnsmos >= 3.0
    d = r.default
    assert d["backend"].startswith("Piper") and abs(d["similarity"] - r.similarity) < 0.05


@slow
def test_clear_but_different_voice_fails_on_similarity_only(piper_clips):
    r = check.check_voice(lambda t: default_voice.speak_espeak(t, rate=None), piper_clips, SENTENCES)
    assert r.wer <= check.WER_MAX and r.dnsmos >= check.DNSMOS_MIN  # it speaks words, cleanly ...
    assert not r.ok and len(r.reasons) == 1 and "less like the character than the default voice" in r.reasons[0]  # ... as someone else


def test_word_error_rate_counts_silence_and_ignores_case():
    assert check.word_error_rate(["Hello, World!"], ["hello world"]) == 0.0
    assert check.word_error_rate(["one two three", "four"], ["", "four"]) == 0.75
    assert check.word_error_rate(["a b c d"], ["a x c d"]) == 0.25
    # the same words spoken, written another way: contractions, a compound written apart (either side)
    assert check.word_error_rate(["Wait, where is the lighthouse?"], ["Wait, where's the light house?"]) == 0.0
    assert check.word_error_rate(["I can't see the light house"], ["I cannot see the lighthouse"]) == 0.0
    assert check.word_error_rate(["We'll go"], ["we will go"]) == 0.0
    assert check.word_error_rate(["the light is on"], ["the lighthouse is on"]) == 0.25  # a real error stays one
    with pytest.raises(check.BadInputError):
        check.check_voice(white_noise, [], ["  "])


@pytest.fixture(scope="module")
def noisy_home(piper_clips, tmp_path_factory):
    """A library whose voice 'hissy' (white noise) was checked against a dataset of the Piper clips."""
    from pipeline.media import write_audio
    from pipeline.service import Service
    from pipeline.library import now

    tmp_path = tmp_path_factory.mktemp("noisy")
    ds = tmp_path / "ds"
    (ds / "wavs").mkdir(parents=True)
    lines = []
    for i, (audio, rate) in enumerate(piper_clips):
        write_audio(ds / "wavs" / f"c{i}.wav", audio, rate)
        lines.append(f"c{i}|{REF_TEXTS[i]}|{REF_TEXTS[i]}")
    (ds / "metadata.csv").write_text("\n".join(lines) + "\n")
    svc = Service(home=tmp_path / "home")
    with svc.lib.atomic() as db:
        db["voices"].insert({"name": "hissy", "base_model": "tiny", "created_at": now(), "status": "training"})
        vid = db.execute("SELECT id FROM voices WHERE name='hissy'").fetchone()[0]
    from pipeline.workflows.training import check_and_store

    res = check_and_store(svc, vid, white_noise, ds)
    return svc, vid, res


@slow
def test_service_stores_numbers_and_marks_noise_failed(noisy_home):
    svc, vid, res = noisy_home
    assert res["ok"] is False and res["reasons"]
    row = svc.lib.db.execute("SELECT status, similarity, wer, dnsmos FROM voices WHERE id=?", [vid]).fetchone()
    assert row[0] == "failed" and row[2] == res["wer"] > 0.5 and row[3] == res["dnsmos"] < 2.0 and row[1] == res["similarity"]
    listed = {v["name"]: v for v in svc.voices()}
    assert listed["hissy"]["status"] == "failed" and listed["hissy"]["check"]["reasons"] == res["reasons"]
    assert listed["hissy"]["check"]["default"]["dnsmos"] >= 3.0  # the default voice's numbers beside it
    assert listed["default"]["check"]["wer"] == res["default"]["wer"]


@slow
def test_panel_voices_view_shows_the_numbers(noisy_home):
    """The panel's Voices view (real server, real Chromium): the failed voice, its three numbers beside the
    default voice's, and why it failed."""
    from tests.desktop_env import panel_page

    svc, _, res = noisy_home
    with panel_page(svc.lib.home) as (page, errors):
        page.click("#tabs button[data-view=voices]")
        page.wait_for_selector("tr[data-voice=hissy] td.check-dnsmos")
        row = page.inner_text("tr[data-voice=hissy]")
        wer = page.inner_text("tr[data-voice=hissy] td.check-wer")
        failed = page.inner_text("[data-failed=hissy]")
    assert not errors, errors
    assert "failed" in row and f"{res['dnsmos']:.2f}" in row and f"(default {res['default']['dnsmos']:.2f})" in row
    assert wer.startswith(f"{round(res['wer'] * 100)}%") and "(default" in wer
    assert res["reasons"][0][:40] in failed
