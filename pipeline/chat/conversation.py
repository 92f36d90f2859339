"""The conversation loop: persona + trimmed history → provider stream → sentences → speech, sentence by sentence.

:meth:`Conversation.send` streams the reply and hands every finished sentence to a synthesis worker thread
while the model keeps generating, so the first sentence is audible long before the reply is complete.
Provider failures never escape ``send``: the partial reply stays in the history marked ``partial`` and
``Reply.error`` says what happened. Input that cannot be sent (empty, over ``max_user_chars``, larger than
the model's context) raises :class:`BadInputError` before anything is sent, leaving the history untouched.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from ..errors import BadInputError, Cancelled, WeaverError
from ..progress import CancelToken
from ..text.sentences import leading_clause
from .persona import Persona
from .providers import ChatProvider, ProviderStreamError, normalize_options
from .reply_shape import ReplyShaper

MAX_USER_CHARS = 8000  # ≈ 2000 tokens: more is a paste, not a chat turn
DEFAULT_HISTORY_TOKENS = 3000  # when neither the caller nor the provider knows the context size
DEFAULT_REPLY_TOKENS = 400  # spoken replies are short; the persona's options may change it
SHAPING_KEYS = ("max_chars",)  # generation controls applied here, not sent to the provider
MESSAGE_OVERHEAD_TOKENS = 4  # role markers the chat template adds around each message
CONTEXT_MARGIN_TOKENS = 32
STREAM_PIECE_S = 0.4  # a streaming voice's audio goes to the player in pieces at least this long …
FIRST_PIECE_S = 0.24  # … except the reply's first piece (three Pocket frames): the first audio comes sooner
_TOKEN_CAP_MARGIN = 16  # deltas (≈ tokens) before max_tokens from which only whole sentences are streamed

TTS = Callable[[str], tuple[np.ndarray, int]]
Player = Callable[[np.ndarray, int], None]
SentenceAudioCallback = Callable[[int, str, np.ndarray, int], None]


@dataclass
class Reply:
    """What one send produced. Times are seconds since send() received the message (None: never happened)."""

    text: str
    sentences: list[str] = field(default_factory=list)
    error: str | None = None
    partial: bool = False  # the reply stopped early (error or cancel); it is in the history marked partial
    cancelled: bool = False
    t_first_token: float | None = None
    t_first_sentence: float | None = None
    t_first_audio: float | None = None  # first sentence synthesised (ready to play)
    t_done: float | None = None  # generation finished (audio of the last sentences may still be in synthesis)
    t_audio_done: float | None = None  # every sentence synthesised (and played, with a player)
    audio_errors: list[str] = field(default_factory=list)
    dropped_messages: int = 0  # old history messages left out to fit the context
    stopped: str | None = None  # why reply shaping ended it early: stop | length | repeat | truncated

    def to_dict(self) -> dict:
        return asdict(self)


_ACTION_RE = re.compile(r"\*[^*]{0,300}\*")
_MARKUP_RE = re.compile(r"[*_`#~>|\[\]]+|https?://\S+")


def speakable(sentence: str) -> str:
    """The part of a sentence worth speaking: no *stage directions*, markdown or links ('' if nothing is left)."""
    text = _MARKUP_RE.sub(" ", _ACTION_RE.sub(" ", sentence))
    text = re.sub(r"\s+([.,!?;:…])", r"\1", re.sub(r"\s+", " ", text)).strip()
    return text if re.search(r"\w", text) else ""


class Conversation:
    """A chat with one persona through one provider. ``history`` (list of role/content dicts) is updated in place.

    ``tts(text) -> (audio, rate)`` voices each finished sentence; ``player(audio, rate)`` plays it (blocking is
    fine: it runs on its own thread). ``on_message(message_dict)`` is called for each message added to the
    history (the caller persists it). One ``send`` at a time per conversation.
    """

    def __init__(self, provider: ChatProvider, persona: Persona, history: list[dict] | None = None, *,
                 model: str | None = None, max_history_tokens: int | None = None, tts: TTS | None = None,
                 player: Player | None = None, on_message: Callable[[dict], None] | None = None,
                 max_user_chars: int = MAX_USER_CHARS, summary: str = "", speak_first_clause: bool = True):
        self.provider = provider
        self.speak_first_clause = speak_first_clause  # voice the reply's first clause before its sentence ends
        self.summary = (summary or "").strip()  # the model's summary of older messages (pipeline.chat.memory)
        self.persona = persona
        self.history: list[dict] = history if history is not None else []
        self.model = model or persona.model
        self.max_history_tokens = max_history_tokens
        self.tts = tts
        self.player = player
        self.on_message = on_message
        self.max_user_chars = max_user_chars
        self._busy = threading.Lock()
        self._token_cache: dict[str, int] = {}  # text -> tokens (history is re-measured every turn)
        self._token_cache_model = self.model

    # -- building the request ----------------------------------------------------------------------
    def options(self) -> dict:
        """Generation options sent to the provider (persona options + temperature, reply length capped)."""
        opts = normalize_options(self.persona.generation_options())
        opts.setdefault("max_tokens", DEFAULT_REPLY_TOKENS)
        return opts

    def provider_options(self) -> dict:
        """:meth:`options` without the ones only reply shaping uses."""
        return {k: v for k, v in self.options().items() if k not in SHAPING_KEYS}

    def shaper(self) -> ReplyShaper:
        """The reply shaper for this persona: its ``max_chars`` cap and stop strings."""
        opts = self.options()
        return ReplyShaper(max_chars=opts.get("max_chars") or None, stop=opts.get("stop"))

    def _tokens(self, role: str, text: str) -> int:
        """Tokens one message takes in the prompt: its text, its role and the template's markers."""
        return self._count(role) + self._count(text) + MESSAGE_OVERHEAD_TOKENS

    def _count(self, text: str) -> int:
        if self._token_cache_model != self.model:
            self._token_cache.clear()
            self._token_cache_model = self.model
        n = self._token_cache.get(text)
        if n is None:
            if len(self._token_cache) > 2048:
                self._token_cache.clear()
            n = self._token_cache[text] = self.provider.count_tokens(text, self.model)
        return n

    def _history_budget(self, system: str, user_text: str, opts: dict) -> int:
        ctx = opts.get("num_ctx") or self.provider.context_length(self.model)
        fixed = self._tokens("system", system) + self._tokens("user", user_text) + self._tokens("assistant", "")
        if ctx:
            reply = int(opts.get("max_tokens") or DEFAULT_REPLY_TOKENS)
            room = int(ctx) - reply - fixed - CONTEXT_MARGIN_TOKENS
            if room < 0:
                raise BadInputError(
                    f"your message and the persona's prompt need about {fixed} tokens, but the model's context is "
                    f"{ctx} tokens with {reply} kept for the reply; shorten the message or the system prompt")
            return min(room, self.max_history_tokens) if self.max_history_tokens is not None else room
        return self.max_history_tokens if self.max_history_tokens is not None else DEFAULT_HISTORY_TOKENS

    def build_messages(self, user_text: str) -> tuple[list[dict], int]:
        """(messages to send, number of old history messages dropped): system prompt + newest history that fits + user."""
        self.validate(user_text)
        base = self.persona.system_prompt or f"You are {self.persona.name}."
        system = f"{base}\n\nEarlier in this conversation: {self.summary}" if self.summary else base
        budget = self._history_budget(system, user_text, self.options())
        kept: list[dict] = []
        used = 0
        for m in reversed(self.history):
            if m.get("role") not in ("user", "assistant") or not isinstance(m.get("content"), str):
                continue
            cost = self._tokens(m["role"], m["content"])
            if used + cost > budget:
                break
            kept.append({"role": m["role"], "content": m["content"]})
            used += cost
        kept.reverse()
        usable = sum(1 for m in self.history if m.get("role") in ("user", "assistant"))
        if len(kept) == usable:
            system = base  # everything fits: the summary would only repeat it
        messages = [{"role": "system", "content": system}, *kept, {"role": "user", "content": user_text}]
        return messages, usable - len(kept)

    def validate(self, user_text: str) -> None:
        """Refuse messages that cannot be sent (BadInputError, one line)."""
        if not isinstance(user_text, str) or not user_text.strip():
            raise BadInputError("the message is empty")
        if len(user_text) > self.max_user_chars:
            raise BadInputError(f"the message is {len(user_text):,} characters; the limit is {self.max_user_chars:,} "
                                "(shorten it or send it in parts)")

    def greet(self) -> str | None:
        """Start an empty conversation with the persona's greeting (added to the history); None if none."""
        if self.history or not (self.persona.greeting or "").strip():
            return None
        self._append({"role": "assistant", "content": self.persona.greeting.strip(), "partial": False})
        return self.persona.greeting.strip()

    def _append(self, message: dict) -> None:
        self.history.append(message)
        if self.on_message is not None:
            self.on_message(message)

    # -- the loop ----------------------------------------------------------------------------------
    def send(self, user_text: str, *, on_delta: Callable[[str], None] | None = None,
             on_sentence_audio: SentenceAudioCallback | None = None, cancel: CancelToken | None = None) -> Reply:
        """Send a user message, stream and voice the reply; provider errors come back in ``Reply.error``."""
        t0 = time.perf_counter()
        messages, dropped = self.build_messages(user_text)  # BadInputError before anything is sent
        if not self._busy.acquire(blocking=False):
            raise BadInputError("a reply is still being generated in this conversation; wait or cancel it")
        try:
            return self._send(user_text, messages, dropped, t0, on_delta, on_sentence_audio, cancel)
        finally:
            self._busy.release()

    def _send(self, user_text, messages, dropped, t0, on_delta, on_sentence_audio, cancel) -> Reply:
        reply = Reply(text="", dropped_messages=dropped)
        since = lambda: time.perf_counter() - t0  # noqa: E731
        speech = _SpeechPipeline(self.tts, self.player, on_sentence_audio, cancel, reply, since) if self.tts else None
        shaper = self.shaper()  # stop strings, length cap at a sentence end, repeated sentences
        opts = self.provider_options()
        max_tokens = int(opts.get("max_tokens") or 0)
        parts: list[str] = []
        sent = ""  # what on_delta has been given
        stopped_by_provider = False
        ahead = ""  # the first sentence's clause already handed to the voice

        def take(sentences: list[str]) -> None:
            nonlocal ahead
            for s in sentences:
                if reply.t_first_sentence is None:
                    reply.t_first_sentence = since()
                reply.sentences.append(s)
                if speech is not None:
                    if ahead and s.startswith(ahead):
                        s = s[len(ahead):].strip()  # the rest of the sentence whose clause is being spoken
                    ahead = ""
                    speech.put(s)

        def speak_ahead() -> None:
            """Before the first sentence ends, voice its first clause (the first audio comes a clause sooner)."""
            nonlocal ahead
            if speech is None or not self.speak_first_clause or reply.t_first_sentence is not None or ahead:
                return
            clause = leading_clause(shaper.pending)
            if clause:
                ahead = clause
                speech.put(clause)

        stream = None
        try:
            stream = self.provider.stream_chat(self.model, messages, options=opts, cancel=cancel)
            for delta in stream:
                if reply.t_first_token is None:
                    reply.t_first_token = since()
                parts.append(delta)
                take(shaper.feed(delta))
                speak_ahead()
                # on_delta only ever sees a prefix of the final reply; near the token cap an unfinished fragment
                # may be dropped, so only whole sentences are shown there
                near_cap = max_tokens > 0 and len(parts) >= max_tokens - _TOKEN_CAP_MARGIN
                shown = shaper.settled if near_cap else shaper.shown
                if on_delta is not None and len(shown) > len(sent):
                    piece, sent = shown[len(sent):], shown
                    try:
                        on_delta(piece)
                    except Exception as e:  # noqa: BLE001 - e.g. the listener went away: stop, keep what we have
                        reply.error = f"reply stopped: {e}" if str(e) else "reply stopped"
                        break
                if shaper.done:
                    break  # closing the stream below stops the model
                if cancel is not None and cancel.cancelled:
                    raise Cancelled("reply cancelled")
        except Cancelled:
            reply.cancelled = True
        except ProviderStreamError as e:
            reply.error = str(e)
            stopped_by_provider = True
        except WeaverError as e:
            reply.error = str(e)
        except Exception as e:  # noqa: BLE001 - never let a provider bug escape the chat loop
            reply.error = f"chat failed: {type(e).__name__}: {e}"
        finally:
            if stream is not None and hasattr(stream, "close"):
                stream.close()  # releases the provider's connection (or model lock) when we stopped early
        reply.partial = reply.cancelled or reply.error is not None
        if shaper.done:  # cut by shaping: the kept text (with the space already shown after it, if any)
            reply.text = sent if sent.rstrip() == shaper.text else shaper.text
        elif reply.partial:
            reply.text = "".join(parts)
        if not reply.cancelled and not shaper.done:
            if reply.partial:
                rest = shaper.finish()
                if not stopped_by_provider or "".join(parts).rstrip().endswith((".", "!", "?", "…")):
                    take(rest)  # a reply cut mid-sentence keeps its text but its last fragment is not spoken
                else:
                    reply.sentences.extend(rest)
            else:
                # the token cap ended it (about one delta a token): an unfinished last fragment is dropped
                take(shaper.finish(truncated=len(parts) >= max_tokens > 0))
                reply.text = "".join(parts) if shaper.stopped is None else shaper.text
        reply.stopped = shaper.stopped
        if on_delta is not None and len(reply.text) > len(sent) and reply.text.startswith(sent):
            try:  # also after an error or cancel: the listener ends with exactly the text that is kept
                on_delta(reply.text[len(sent):])  # the part held back until it was certain
            except Exception:  # noqa: BLE001 - the listener went away after the reply was complete
                pass
        reply.t_done = since()

        if reply.text or not reply.partial:
            self._append({"role": "user", "content": user_text, "partial": False})
            self._append({"role": "assistant", "content": reply.text, "partial": reply.partial})
        if speech is not None:
            speech.finish()
            reply.t_audio_done = since()
        return reply


class _SpeechPipeline:
    """Synthesis worker (and player worker) fed sentence by sentence while the model keeps generating."""

    def __init__(self, tts: TTS, player: Player | None, callback: SentenceAudioCallback | None,
                 cancel: CancelToken | None, reply: Reply, since: Callable[[], float]):
        self.tts, self.player, self.callback, self.cancel, self.reply, self.since = tts, player, callback, cancel, reply, since
        self.index = 0
        self.synth_q: queue.Queue = queue.Queue()
        self.play_q: queue.Queue | None = queue.Queue() if player else None
        self.threads = [threading.Thread(target=self._synth_loop, name="chat-tts", daemon=True)]
        if player:
            self.threads.append(threading.Thread(target=self._play_loop, name="chat-player", daemon=True))
        for t in self.threads:
            t.start()

    def _stopped(self) -> bool:
        return self.cancel is not None and self.cancel.cancelled

    def put(self, sentence: str) -> None:
        text = speakable(sentence)
        if text:
            self.synth_q.put((self.index, sentence, text))
            self.index += 1

    def _synth_loop(self) -> None:
        try:
            while True:
                item = self.synth_q.get()
                if item is None or self._stopped():
                    if item is None:
                        return
                    continue
                idx, sentence, text = item
                try:
                    audio, rate = self._synthesise(text)
                except Exception as e:  # noqa: BLE001 - one failed sentence must not end the chat
                    self.reply.audio_errors.append(f"sentence {idx + 1}: {e}")
                    continue
                if self.callback is not None:
                    try:
                        self.callback(idx, sentence, audio, int(rate))
                    except Exception as e:  # noqa: BLE001
                        self.reply.audio_errors.append(f"sentence {idx + 1} callback: {e}")
        finally:
            if self.play_q is not None:
                self.play_q.put(None)

    def _synthesise(self, text: str) -> tuple[np.ndarray, int]:
        """One sentence's audio; a streaming voice (``tts.stream``) is played as it is made, in pieces of at
        least STREAM_PIECE_S, the reply's first one FIRST_PIECE_S (the first audio comes a sentence sooner)."""
        stream = getattr(self.tts, "stream", None)
        if stream is None:
            audio, rate = self.tts(text)
            audio = np.asarray(audio, dtype=np.float32)
            self._out(audio, int(rate))
            return audio, int(rate)
        parts: list[np.ndarray] = []
        piece: list[np.ndarray] = []
        held = 0  # samples in `piece`
        rate = 0
        for chunk, rate in stream(text):
            piece.append(np.asarray(chunk, dtype=np.float32).reshape(-1))
            held += len(piece[-1])
            least = FIRST_PIECE_S if self.reply.t_first_audio is None else STREAM_PIECE_S
            if held >= least * rate:
                parts.append(np.concatenate(piece))
                piece, held = [], 0
                self._out(parts[-1], int(rate))
            if self._stopped():
                break
        if piece:
            parts.append(np.concatenate(piece))
            self._out(parts[-1], int(rate))
        return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)), int(rate or 24000)

    def _out(self, audio: np.ndarray, rate: int) -> None:
        if self.reply.t_first_audio is None:
            self.reply.t_first_audio = self.since()
        if self.play_q is not None:
            self.play_q.put((audio, rate))

    def _play_loop(self) -> None:
        while True:
            item = self.play_q.get()
            if item is None:
                return
            if self._stopped():
                continue
            try:
                self.player(*item)
            except Exception as e:  # noqa: BLE001
                self.reply.audio_errors.append(f"playback: {e}")

    def finish(self) -> None:
        """Wait until every queued sentence is synthesised (and played); cancelled items are skipped."""
        self.synth_q.put(None)
        for t in self.threads:
            t.join()


# -- speech in and voices out --------------------------------------------------------------------------
def transcribe_utterance(audio: np.ndarray, rate: int, *, backend: str | None = None,
                         cancel: CancelToken | None = None, **options) -> str:
    """Push-to-talk input: the text of a short recording via the best available ASR backend."""
    from .. import media
    from ..stages import get_backend

    x = np.asarray(audio, dtype=np.float32)
    if x.ndim > 1:
        x = x.mean(axis=1) if x.shape[1] <= 8 else x.mean(axis=0)
    if x.size == 0:
        raise BadInputError("the recording is empty")
    if rate != media.ANALYSIS_RATE:
        x = media.resample(x, rate, media.ANALYSIS_RATE)
    asr = get_backend("asr", backend, **options)
    # a chat turn needs the words, not their times: no word alignment (cross-attention DTW) after decoding
    transcript = asr.transcribe(x, media.ANALYSIS_RATE, word_timestamps=False, progress=lambda f, m="": None,
                                cancel=cancel)
    return " ".join(ln.text.strip() for ln in transcript.lines if ln.text and ln.text.strip())


class VoiceTTS:
    """``tts(text) -> (audio, rate)`` with a voice from pipeline.voices.synth; ``tts.stream(text)`` yields the
    audio chunk by chunk as the voice makes it (Pocket streams as it decodes)."""

    def __init__(self, voice: str, voices_dir, **synth_options):
        self.voice, self.voices_dir, self.options = voice, voices_dir, synth_options

    def __call__(self, text: str) -> tuple[np.ndarray, int]:
        from ..voices import synth

        return synth.synthesize(self.voice, text, voices_dir=self.voices_dir, **self.options)

    def stream(self, text: str):
        from ..voices import synth

        return synth.synthesize_stream(self.voice, text, voices_dir=self.voices_dir, **self.options)


def voice_tts(voice: str, voices_dir, **synth_options) -> TTS:
    """A TTS callable (see :class:`VoiceTTS`) speaking with a voice from pipeline.voices.synth."""
    return VoiceTTS(voice, voices_dir, **synth_options)
