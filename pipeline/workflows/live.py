"""Live lines while capturing: streaming analysis of a capture session's rolling buffer.

A :class:`LiveAnalyser` runs in its own low-priority thread beside a :class:`capture.CaptureSession`. It only
*reads* the session's ring buffer (capture never waits for it, so a slow analyser cannot drop capture audio):

1. new audio since the last pass → mono 16 kHz, appended to a growing window; Silero VAD marks speech in it;
2. every ``chunk`` seconds faster-whisper (tiny.en, one thread) transcribes the window with word times;
3. :class:`LocalAgreement` commits the words two consecutive passes agree on (the idea of whisper_streaming's
   local agreement); when the speaker pauses, the rest of the hypothesis is committed and the utterance ends;
4. an ended utterance is embedded (Resemblyzer) and matched against the library's voiceprints, then against the
   session's own speaker clusters (a new cluster per new voice), so each line gets a name or a stable label.

Lines go to subscribers (the panel's SSE route, ``weaver capture watch``) as dicts through :meth:`events_since`.
Under load it degrades: longer chunks first, then a pause with a notice (and a jump to the present) rather
than falling behind without bound. Times are seconds on the session's audio clock (frames since listen start).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

RATE = 16000
PAUSE_SECONDS = 0.6  # silence after speech that ends an utterance
MAX_WINDOW_SECONDS = 12.0  # longer utterances are cut at the last committed word
CLUSTER_THRESHOLD = 0.72  # cosine to an existing session speaker to join it
MIN_EMBED_SECONDS = 0.8
CHUNKS = (1.0, 2.0, 4.0)  # seconds between passes, widened under load
PAUSE_BACKLOG_SECONDS = 20.0  # unread audio that makes the analyser pause and jump to the present
START_BACK_SECONDS = 15.0  # audio heard before the analyser was ready that it still looks at


def norm_word(text: str) -> str:
    """A word as agreement compares it: lower case, no punctuation."""
    return re.sub(r"[^\w']+", "", text.lower())


@dataclass
class LiveWord:
    start: float
    end: float
    text: str


class LocalAgreement:
    """Commit the longest prefix two consecutive hypotheses share (times absolute, in seconds).

    ``insert(words)`` takes a pass's words for the whole window, drops those already committed (by time, then
    by an n-gram overlap with the committed tail) and returns the newly committed words. ``flush()`` commits
    what is pending (the speaker paused: no later pass will change it)."""

    def __init__(self) -> None:
        self.committed: list[LiveWord] = []
        self.pending: list[LiveWord] = []

    @property
    def last_end(self) -> float:
        return self.committed[-1].end if self.committed else float("-inf")

    def _new_part(self, words: list[LiveWord]) -> list[LiveWord]:
        last = self.last_end
        hyp = [w for w in words if w.start > last - 0.1 and norm_word(w.text)]
        if self.committed and hyp and abs(hyp[0].start - last) < 1.0:
            tail = [norm_word(w.text) for w in self.committed[-5:]]
            head = [norm_word(w.text) for w in hyp[:5]]
            for n in range(min(len(tail), len(head)), 0, -1):
                if tail[-n:] == head[:n]:
                    hyp = hyp[n:]
                    break
        return hyp

    def insert(self, words: list[LiveWord]) -> list[LiveWord]:
        hyp = self._new_part(words)
        new: list[LiveWord] = []
        for old, w in zip(self.pending, hyp):
            if norm_word(old.text) != norm_word(w.text):
                break
            new.append(w)
        self.committed.extend(new)
        self.pending = hyp[len(new):]
        return new

    def flush(self, words: list[LiveWord] | None = None) -> list[LiveWord]:
        """Commit the pending words (or, given a final pass's words, everything new in it)."""
        new = self._new_part(words) if words is not None else self.pending
        self.committed.extend(new)
        self.pending = []
        return new

    def reset(self) -> None:
        self.committed, self.pending = [], []


@dataclass
class Speaker:
    label: str
    index: int  # colour index of an unknown speaker
    centroid: np.ndarray
    count: int = 1
    name: str | None = None  # a library voiceprint's name when it matched
    score: float = 0.0


class SpeakerTracker:
    """Online speaker assignment: library voiceprints first, then the session's clusters, else a new cluster."""

    def __init__(self, known: dict[str, np.ndarray] | None = None, *, threshold: float | None = None,
                 cluster_threshold: float = CLUSTER_THRESHOLD):
        from pipeline.stages.voiceprint import DEFAULT_THRESHOLD

        self.known = dict(known or {})
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        self.cluster_threshold = float(cluster_threshold)
        self.speakers: list[Speaker] = []

    def assign(self, emb: np.ndarray) -> Speaker:
        from pipeline.stages.voiceprint import cosine, match, unit

        emb = unit(emb)
        best, best_s = None, -1.0
        for sp in self.speakers:
            s = cosine(emb, sp.centroid)
            if s > best_s:
                best, best_s = sp, s
        name, score = match(emb, self.known, self.threshold) if self.known else (None, 0.0)
        if name is not None:
            named = next((sp for sp in self.speakers if sp.name == name), None)
            if named is None and best is not None and best_s >= self.cluster_threshold and best.name is None:
                named = best
            if named is not None:
                self._add(named, emb)
                named.name, named.score = name, max(named.score, score)
                return named
            return self._new(emb, name, score)
        if best is not None and best_s >= self.cluster_threshold:
            self._add(best, emb)
            return best
        return self._new(emb, None, 0.0)

    def _add(self, sp: Speaker, emb: np.ndarray) -> None:
        from pipeline.stages.voiceprint import unit

        sp.centroid = unit(sp.centroid * sp.count + emb)
        sp.count += 1

    def _new(self, emb, name, score) -> Speaker:
        sp = Speaker(label=f"S{len(self.speakers) + 1}", index=len(self.speakers), centroid=emb, name=name, score=score)
        self.speakers.append(sp)
        return sp


def library_voiceprints(home) -> dict[str, np.ndarray]:
    """The library's named voiceprints (name → embedding); {} when none or no library."""
    from pathlib import Path

    from pipeline.library import Library
    from pipeline.library.voiceprints import known

    if not (Path(home) / "library.db").exists() and not any(Path(home).glob("*.db")):
        return {}
    lib = Library(Path(home))
    try:
        return known(lib.db)
    except Exception:  # noqa: BLE001 - an old or empty library: no prints to match
        return {}
    finally:
        lib.close()


@dataclass
class LiveLine:
    id: int
    start: float
    end: float
    text: str
    final: bool = False
    speaker: str | None = None  # session label ("S1")
    name: str | None = None  # voiceprint name when matched
    color: int | None = None
    committed_at: float = 0.0  # audio-clock position (s) when the line's last words were committed
    first_at: float = 0.0  # audio-clock position when the line first appeared
    words: list[LiveWord] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"id": self.id, "start": round(self.start, 3), "end": round(self.end, 3), "text": self.text,
                "final": self.final, "speaker": self.speaker, "name": self.name, "color": self.color,
                "latency": round(max(0.0, self.committed_at - self.end), 3),
                "words": [[round(w.start, 3), round(w.end, 3), w.text] for w in self.words]}


_RUNNING: "weakref.WeakSet[LiveAnalyser]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Let running analysers finish their pass before the interpreter goes: a daemon thread killed inside a
    CTranslate2 call aborts the process ("terminate called without an active exception")."""
    for a in list(_RUNNING):
        a.stop(timeout=60.0)


def _lower_priority() -> None:
    """Nice this thread (Linux threads are tasks; other platforms: the call fails, quietly)."""
    with contextlib.suppress(Exception):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class LiveAnalyser:
    """Streaming VAD → ASR (local agreement) → online speakers over a session's ring buffer, in a thread."""

    def __init__(self, session, *, known: dict[str, np.ndarray] | None = None, model: str | None = None,
                 chunk: float = CHUNKS[0], max_window: float = MAX_WINDOW_SECONDS, speakers: bool = True):
        self.session = session
        self.model = model
        self.chunk = self.base_chunk = float(chunk)
        self.max_window = float(max_window)
        self.do_speakers = bool(speakers)
        self.tracker = SpeakerTracker(known)
        self.lines: list[LiveLine] = []
        self.notice: str | None = None
        self.error: str | None = None
        self.passes = 0
        self.busy_seconds = 0.0  # thread CPU time spent
        self.started_wall = 0.0
        self.skipped_seconds = 0.0  # audio the analyser did not look at (paused), never capture's loss
        self._events: list[tuple[int, dict]] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._agree = LocalAgreement()
        self._current: LiveLine | None = None
        self._win = np.zeros(0, np.float32)
        self._probs = np.zeros(0, np.float32)
        self._win_start = 0.0  # audio-clock seconds of the window's first sample
        self._read_pos: int | None = None  # next ring frame to read

    # -- public ----------------------------------------------------------------------------------
    def start(self) -> "LiveAnalyser":
        self.started_wall = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="live-lines", daemon=True)
        _RUNNING.add(self)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def events_since(self, seq: int, timeout: float = 0.0) -> tuple[int, list[dict]]:
        """Events (line updates, notices) after `seq`, waiting up to `timeout` s for one; returns (last seq, events)."""
        with self._cond:
            if timeout and not any(s > seq for s, _ in self._events[-1:]):
                self._cond.wait(timeout)
            out = [e for s, e in self._events if s > seq]
            return self._seq, out

    def snapshot(self) -> list[dict]:
        with self._cond:
            return [ln.as_dict() for ln in self.lines]

    def status(self) -> dict:
        wall = max(1e-6, time.monotonic() - self.started_wall) if self.started_wall else 0.0
        return {"running": self.running, "lines": len(self.lines), "chunk": self.chunk, "notice": self.notice,
                "error": self.error, "passes": self.passes,
                "thread_cpu_share": round(self.busy_seconds / wall, 3) if wall else 0.0,
                "skipped_seconds": round(self.skipped_seconds, 1)}

    def line(self, line_id: int) -> LiveLine | None:
        with self._cond:
            return next((ln for ln in self.lines if ln.id == line_id), None)

    # -- events ------------------------------------------------------------------------------------
    def _emit(self, event: dict) -> None:
        with self._cond:
            self._seq += 1
            self._events.append((self._seq, event))
            if len(self._events) > 2000:
                del self._events[:500]
            self._cond.notify_all()

    def _emit_line(self, ln: LiveLine) -> None:
        self._emit({"type": "line", **ln.as_dict()})

    def _set_notice(self, text: str | None) -> None:
        if text != self.notice:
            self.notice = text
            self._emit({"type": "notice", "text": text})

    # -- thread ------------------------------------------------------------------------------------
    def _run(self) -> None:
        _lower_priority()
        t0 = time.thread_time()
        try:
            self._load()
            slow = quick = 0
            while not self._stop.is_set():
                began = time.monotonic()
                self._pass()
                spent = time.monotonic() - began
                self.busy_seconds = time.thread_time() - t0
                self.passes += 1
                slow = slow + 1 if spent > 0.9 * self.chunk else 0
                quick = quick + 1 if spent < 0.3 * self.chunk else 0
                if slow >= 3 and self.chunk < CHUNKS[-1]:
                    self.chunk = next(c for c in CHUNKS if c > self.chunk)
                    slow = 0
                    self._set_notice(f"live lines slowed down (busy computer): a pass every {self.chunk:.0f} s")
                elif quick >= 8 and self.chunk > self.base_chunk:
                    self.chunk = max(c for c in CHUNKS if c < self.chunk)
                    quick = 0
                    self._set_notice(None)
                self._stop.wait(max(0.05, self.chunk - spent))
            self._finish_utterance(final_words=None)
        except Exception as e:  # noqa: BLE001 - the analyser never takes capture down; say why it stopped
            from pipeline.errors import WeaverError

            self.error = str(e) if isinstance(e, WeaverError) else f"live lines stopped: {type(e).__name__}: {e}"
            self._emit({"type": "notice", "text": self.error})
        finally:
            self.busy_seconds = time.thread_time() - t0
            _RUNNING.discard(self)

    def _load(self) -> None:
        from pipeline.stages.asr import FasterWhisperAsr
        from pipeline.stages.vad import SileroVad

        self._asr = FasterWhisperAsr(self.model, cpu_threads=1, temperature=0.0)
        self._asr.load()
        self._vad = SileroVad(threads=1)
        self._vad._load()

    def _clock(self) -> float:
        ring = self.session.ring
        return ring.total_frames / ring.rate if ring is not None else 0.0

    def _read(self) -> bool:
        """Move new ring audio into the window; False when there was none."""
        from pipeline.media import resample

        ring = self.session.ring
        if ring is None:
            return False
        total = ring.total_frames
        if self._read_pos is None:  # begin where listening began (the models may have taken a while to load)
            self._read_pos = max(0, total - int(min(ring.seconds, START_BACK_SECONDS) * ring.rate))
            self._win_start = self._read_pos / ring.rate
            return False
        n = total - self._read_pos
        if ring.rate % RATE == 0:
            n -= n % (ring.rate // RATE)
        if n <= 0:
            return False
        if n > PAUSE_BACKLOG_SECONDS * ring.rate:  # fell far behind: jump to the present, say so
            self.skipped_seconds += n / ring.rate
            self._finish_utterance(final_words=None)
            self._set_notice("live lines paused: the computer is too busy (capture goes on; "
                             f"{n / ring.rate:.0f} s were not transcribed live)")
            self._read_pos = total
            self._win, self._probs = np.zeros(0, np.float32), np.zeros(0, np.float32)
            self._win_start = total / ring.rate
            return False
        data, first = ring.last_frames(total - self._read_pos)
        data = data[:n]
        if first > self._read_pos:  # overwritten before we read it
            self.skipped_seconds += (first - self._read_pos) / ring.rate
        self._read_pos = first + len(data)
        mono = data.mean(axis=1) if data.ndim == 2 else data
        a = resample(mono.astype(np.float32), ring.rate, RATE)
        if not len(self._win):
            self._win_start = first / ring.rate
        self._win = np.concatenate([self._win, a])
        wv = self._vad.WINDOW  # VAD decisions per whole 32 ms window; a partial one waits for the next read
        done, whole = len(self._probs) * wv, (len(self._win) // wv) * wv
        if whole > done:
            self._probs = np.concatenate([self._probs, self._vad.speech_probabilities(self._win[done:whole])])
        if self.notice and self.notice.startswith("live lines paused"):
            self._set_notice(None)
        return True

    def _speech_frames(self) -> np.ndarray:
        return np.flatnonzero(self._probs >= self._vad.threshold)

    def _trim(self, seconds: float) -> None:
        """Drop the window's first `seconds`."""
        cut = max(0, min(len(self._win), int(seconds * RATE)))
        cut -= cut % self._vad.WINDOW
        self._win = self._win[cut:]
        self._probs = self._probs[cut // self._vad.WINDOW:]
        self._win_start += cut / RATE

    def _pass(self) -> None:
        if not self._read() and not len(self._win):
            return
        for _ in range(8):  # each utterance the window holds that a pause has ended, then the one in progress
            if self._stop.is_set() or not self._step():
                return

    def _step(self) -> bool:
        """One look at the window; True when an utterance ended and the rest of the window needs a look too."""
        w = self._vad.WINDOW / RATE
        speech = self._speech_frames()
        dur = len(self._win) / RATE
        if not len(speech):
            self._finish_utterance(final_words=None)
            self._trim(max(0.0, dur - 0.5))
            return False
        first_speech = speech[0] * w
        if self._current is None and not self._agree.pending and first_speech > 0.5:
            self._trim(first_speech - 0.3)
            speech = self._speech_frames()
            dur = len(self._win) / RATE
        ends = (speech + 1) * w
        gaps = np.flatnonzero(np.diff(speech) * w >= PAUSE_SECONDS)
        if len(gaps) or dur - ends[-1] >= PAUSE_SECONDS:
            # the speaker paused: one final pass up to the pause, commit all of it, end the utterance
            if len(gaps):
                end, nxt = ends[gaps[0]], speech[gaps[0] + 1] * w
            else:
                end, nxt = ends[-1], dur
            upto = min(nxt - 0.1, end + 0.3)
            self._finish_utterance(final_words=self._transcribe(upto))
            self._trim(upto)
            return bool(len(gaps))
        if dur < 1.0:
            return False
        words = self._transcribe(dur)
        new = self._agree.insert(words)
        if new:
            self._commit(new)
        if dur > self.max_window and self._agree.committed:
            cut = self._agree.last_end - self._win_start
            self._finish_utterance(final_words=None, flush=False)
            self._trim(cut)
        return False

    def _transcribe(self, upto: float) -> list[LiveWord]:
        audio = self._win[: int(upto * RATE)]
        if len(audio) < 0.3 * RATE:
            return []
        tr = self._asr.transcribe(audio, RATE, language="en", word_timestamps=True)
        base = self._win_start
        return [LiveWord(base + wd.start, base + wd.end, wd.text) for ln in tr.lines for wd in ln.words]

    def _commit(self, words: list[LiveWord]) -> None:
        now = self._clock()
        with self._cond:
            if self._current is None:
                self._current = LiveLine(id=len(self.lines) + 1, start=words[0].start, end=words[-1].end, text="",
                                         first_at=now)
                self.lines.append(self._current)
            ln = self._current
            ln.words.extend(words)
            ln.end = words[-1].end
            ln.text = " ".join(x.text for x in ln.words).strip()
            ln.committed_at = now
        self._emit_line(ln)

    def _finish_utterance(self, final_words: list[LiveWord] | None, flush: bool = True) -> None:
        new = self._agree.flush(final_words) if flush else []
        if new:
            self._commit(new)
        ln = self._current
        self._current = None
        self._agree.reset()
        if ln is None:
            return
        if self.do_speakers:
            self._label(ln)
        ln.final = True
        self._emit_line(ln)

    def _label(self, ln: LiveLine) -> None:
        a = self._win[max(0, int((ln.start - self._win_start) * RATE)): max(0, int((ln.end - self._win_start) * RATE))]
        if len(a) < MIN_EMBED_SECONDS * RATE:
            ring = self.session.ring
            if ring is None:
                return
            total = ring.total_frames
            back = total / ring.rate - ln.start
            if back <= 0 or back > ring.seconds:
                return
            data, first = ring.last_frames(int(back * ring.rate))
            data = data[: int((ln.end - ln.start) * ring.rate)]
            from pipeline.media import resample

            a = resample((data.mean(axis=1) if data.ndim == 2 else data).astype(np.float32), ring.rate, RATE)
        if len(a) < MIN_EMBED_SECONDS * RATE * 0.6:
            return
        import torch

        from pipeline.stages.voiceprint import embed

        prev = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            emb = embed(a, RATE)
        finally:
            torch.set_num_threads(prev)
        with self._cond:
            sp = self.tracker.assign(emb)
            ln.speaker, ln.name, ln.color = sp.label, sp.name, sp.index


def lines_in_window(lines: list[dict], start: float, end: float) -> list[dict]:
    """Live lines inside [start, end) (audio-clock seconds), times made relative to `start` (a saved window)."""
    out = []
    for ln in lines:
        if ln["end"] <= start or ln["start"] >= end:
            continue
        d = dict(ln)
        d["start"], d["end"] = round(max(0.0, ln["start"] - start), 3), round(ln["end"] - start, 3)
        d["words"] = [[round(a - start, 3), round(b - start, 3), t] for a, b, t in ln.get("words", [])]
        out.append(d)
    return out
