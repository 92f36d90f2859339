"""`weaver chat CHARACTER --voice`: hands-free voice chat on the microphone and the speakers (pipeline.chat.voice_mode)."""

from __future__ import annotations

import gc
import sys
import threading


def build_voice_mode(svc, conversation_id: int, *, mic: str | None = None, speaker: str | None = None,
                     on_event=None, on_delta=None, stop: threading.Event | None = None):
    """(VoiceMode, frames iterator, cleanup) wired to soundcard: mic frames in, persona voice out, echo reference
    from the speakers' loopback (everything they play) or, without one, from our own playback."""
    from capture.devices import find_source
    from capture.voice_io import OutputRecorder, SoundcardPlayer, mic_frames
    from pipeline.chat.conversation import transcribe_utterance
    from pipeline.chat.voice_mode import EchoReference, VoiceMode

    reference = EchoReference()
    recorder = None
    try:
        find_source("loopback", speaker)
        recorder = OutputRecorder(reference.push, speaker).start()
        player = SoundcardPlayer(speaker)
    except Exception:  # noqa: BLE001 - no loopback: our own samples are the reference (a film is not covered)
        player = SoundcardPlayer(speaker, on_played=lambda x, rate, t: reference.push(x, t, rate))

    def respond(text, cancel, play):
        return svc.chat_send(conversation_id, text, speak=True, player=play, cancel=cancel, on_delta=on_delta)

    vm = VoiceMode(respond, transcribe_utterance, player, reference=reference, on_event=on_event)
    stop = stop or threading.Event()
    # a full garbage collection walks every object of the process with the GIL held (0.45 s measured in a test
    # process): the microphone frames and the voice stall that long and a barge-in comes late. Objects alive now
    # are left out of collections until voice mode ends; what it allocates is still collected
    gc.collect()
    gc.freeze()

    def cleanup():
        stop.set()
        vm.close()
        if recorder is not None:
            recorder.stop()
        gc.unfreeze()

    return vm, mic_frames(mic, stop=stop), cleanup


def run_voice_chat(svc, conversation_id: int, persona_name: str, *, mic: str | None = None,
                   speaker: str | None = None) -> int:
    """Listen until Ctrl-C; print what was heard and the replies; barge-in stops the voice."""

    def event(kind: str, data: dict) -> None:
        if kind == "transcript":
            print(f"you: {data['text']}", flush=True)
            print(f"{persona_name}: ", end="", flush=True)
        elif kind == "reply":
            print(" [interrupted]" if data.get("interrupted") else "", flush=True)
        elif kind == "barge_in":
            print(" …", end="", flush=True)
        elif kind == "error":
            print(f"weaver: error: {data['error']}", file=sys.stderr, flush=True)

    vm, frames, cleanup = build_voice_mode(svc, conversation_id, mic=mic, speaker=speaker, on_event=event,
                                           on_delta=lambda d: print(d, end="", flush=True))
    print(f"voice mode with {persona_name}: speak when you like, talk over the reply to interrupt; Ctrl-C ends",
          file=sys.stderr, flush=True)
    try:
        for frame, t in frames:
            vm.feed(frame, t)
    except KeyboardInterrupt:
        pass
    finally:
        cleanup()
    return 0
