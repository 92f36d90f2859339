"""Audio sources through `soundcard`: list devices, open the loopback of an output or a microphone.

soundcard's PulseAudio backend connects to the sound server when it is imported, reads `sys.argv[1]`
for its client name (crashing under an empty argv), and aborts the whole process (a libpulse assertion)
when asked anything after the server died. Everything here goes through :func:`soundcard_module`,
which guards the import, checks the connection and reconnects after the server restarted.
"""

from __future__ import annotations

import atexit
import sys
import threading
from dataclasses import dataclass

from .errors import AudioBackendError, DeviceNotFoundError

_LOCK = threading.RLock()
CLIENT_NAME = "voice-weaver"


@dataclass
class Device:
    id: str
    name: str
    kind: str  # "loopback" (what an output plays) | "mic"
    channels: int
    default: bool = False


NO_SERVER_HINT = ("is PulseAudio/PipeWire running? (Linux: start it or set PULSE_SERVER; "
                  "macOS: install BlackHole and pick it as a mic; Windows: WASAPI loopback needs an output device)")


def _import_soundcard():
    saved = sys.argv
    try:
        sys.argv = [CLIENT_NAME]  # soundcard's pulse backend names its client from argv and crashes on [] / ['-c']
        import soundcard
    finally:
        sys.argv = saved
    return soundcard


def _connected(pa) -> bool:
    p = pa._pulse
    try:
        return p._pa_context_get_state(p.context) == pa._pa.PA_CONTEXT_READY
    except Exception:
        return False


def _reconnect(pa) -> None:
    old = pa._pulse
    try:
        atexit.unregister(old._shutdown)  # shutting down a dead context at exit can abort in libpulse
    except Exception:
        pass
    saved = sys.argv
    try:
        sys.argv = [CLIENT_NAME]
        new = pa._PulseAudio()
    except AssertionError:
        raise AudioBackendError(f"no audio loopback device found: cannot connect to the sound server; {NO_SERVER_HINT}") from None
    finally:
        sys.argv = saved
    pa._pulse = new
    atexit.register(new._shutdown)


def soundcard_module():
    """Import soundcard (guarded) and make sure it talks to a live sound server; raises AudioBackendError."""
    with _LOCK:
        try:
            sc = _import_soundcard()
        except (AssertionError, RuntimeError, OSError, ImportError) as e:
            raise AudioBackendError(f"no audio loopback device found: cannot reach the sound server ({type(e).__name__}: "
                                    f"{str(e) or 'connection failed'}); {NO_SERVER_HINT}") from None
        pa = sys.modules.get("soundcard.pulseaudio")
        if pa is not None and hasattr(pa, "_pulse") and not _connected(pa):
            _reconnect(pa)
        return sc


def reset_backend() -> None:
    """Reconnect soundcard to the (possibly different) sound server named by the environment now."""
    with _LOCK:
        pa = sys.modules.get("soundcard.pulseaudio")
        if pa is None or not hasattr(pa, "_pulse"):
            return
        _reconnect(pa)


def backend_alive() -> bool:
    """Whether soundcard's connection to the sound server is still up (always True off PulseAudio)."""
    pa = sys.modules.get("soundcard.pulseaudio")
    if pa is None or not hasattr(pa, "_pulse"):
        return True
    return _connected(pa)


def _channels(card) -> int:
    try:
        ch = card.channels
        return int(ch) if isinstance(ch, int) else len(ch)
    except Exception:
        return 0


def list_devices() -> list[Device]:
    """Every capture source: loopbacks of outputs (kind "loopback") and microphones (kind "mic")."""
    sc = soundcard_module()
    with _LOCK:
        try:
            mics = sc.all_microphones(include_loopback=True)
            try:
                default_mic = sc.default_microphone().id
            except Exception:
                default_mic = None
            try:
                default_loop = _loopback_of(sc, sc.default_speaker()).id
            except Exception:
                default_loop = None
            out = []
            for m in mics:
                loop = bool(m.isloopback)
                mid = str(m.id)
                out.append(Device(id=mid, name=str(m.name), kind="loopback" if loop else "mic", channels=_channels(m),
                                  default=mid == (default_loop if loop else default_mic)))
        except (RuntimeError, AssertionError) as e:
            raise AudioBackendError(f"cannot list audio devices ({e}); {NO_SERVER_HINT}") from None
    return out


def _loopback_of(sc, speaker):
    """The loopback microphone recording `speaker` (the '.monitor' source on PulseAudio/PipeWire)."""
    loops = [m for m in sc.all_microphones(include_loopback=True) if m.isloopback]
    sid = str(speaker.id)
    for m in loops:
        if str(m.id) in (sid, sid + ".monitor"):
            return m
    for m in loops:
        if speaker.name in m.name:
            return m
    raise DeviceNotFoundError(f"no loopback for output '{speaker.name}'")


def find_source(kind: str, device_id: str | None = None):
    """The soundcard microphone object for a loopback (default output when no id) or a mic; plus its Device."""
    sc = soundcard_module()
    with _LOCK:
        try:
            if kind == "loopback":
                if device_id:
                    try:
                        mic = sc.get_microphone(device_id, include_loopback=True)
                    except IndexError:
                        try:
                            mic = _loopback_of(sc, sc.get_speaker(device_id))
                        except (IndexError, DeviceNotFoundError):
                            raise DeviceNotFoundError(f"no audio device with id '{device_id}' (see `weaver devices`)") from None
                else:
                    loops = [m for m in sc.all_microphones(include_loopback=True) if m.isloopback]
                    if not loops:
                        raise AudioBackendError(f"no audio loopback device found: {NO_SERVER_HINT}")
                    try:
                        mic = _loopback_of(sc, sc.default_speaker())
                    except Exception:
                        mic = loops[0]
            elif kind == "mic":
                if device_id:
                    try:
                        mic = sc.get_microphone(device_id, include_loopback=True)
                    except IndexError:
                        raise DeviceNotFoundError(f"no audio device with id '{device_id}' (see `weaver devices`)") from None
                else:
                    try:
                        mic = sc.default_microphone()
                    except Exception:
                        mic = None
                    if mic is None:
                        raise AudioBackendError("no microphone found: plug one in or pick a device id (see `weaver devices`)")
            else:
                raise ValueError(f"unknown source kind {kind!r}")
            dev = Device(id=str(mic.id), name=str(mic.name), kind="loopback" if mic.isloopback else "mic",
                         channels=_channels(mic), default=device_id is None)
        except (RuntimeError, AssertionError) as e:
            raise AudioBackendError(f"cannot open the audio device ({e}); {NO_SERVER_HINT}") from None
    return mic, dev


def device_present(device_id: str) -> bool:
    """Whether a capture device with this exact id still exists (False when the sound server is gone)."""
    if not backend_alive():
        return False
    sc = soundcard_module()
    with _LOCK:
        try:
            return any(str(m.id) == device_id for m in sc.all_microphones(include_loopback=True))
        except Exception:
            return False
