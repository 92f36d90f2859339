"""Media probing, decoding and cutting through PyAV: the project's one decode/resample helper.

Every stage that needs samples calls :func:`load_audio` (or :func:`iter_audio` for streaming) so
decoding, channel picking and resampling live in one place.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import BadInputError, Cancelled
from .files import part_path
from .progress import CancelToken, ProgressCallback, no_progress

ANALYSIS_RATE = 16000
TEXT_SUBTITLE_CODECS = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}


@dataclass
class AudioStream:
    index: int  # position among the container's audio streams (0-based)
    stream_index: int  # absolute stream index in the container
    codec: str
    channels: int
    layout: str
    channel_names: list[str]
    sample_rate: int
    language: str | None = None
    title: str | None = None
    default: bool = False

    @property
    def has_centre(self) -> bool:
        return "FC" in self.channel_names and self.channels > 2


@dataclass
class SubtitleStream:
    index: int
    stream_index: int
    codec: str
    language: str | None = None
    title: str | None = None
    text_based: bool = True


@dataclass
class MediaInfo:
    path: str
    format: str
    duration: float
    audio: list[AudioStream] = field(default_factory=list)
    subtitles: list[SubtitleStream] = field(default_factory=list)
    video: bool = False
    width: int | None = None
    height: int | None = None
    fps: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def fingerprint(path: str | os.PathLike, block: int = 4 << 20) -> str:
    """Fast content hash: size plus SHA-256 of the first, middle and last 4 MiB (enough to spot re-imports)."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(p, "rb") as f:
        for offset in sorted({0, max(0, size // 2 - block // 2), max(0, size - block)}):
            f.seek(offset)
            h.update(f.read(block))
    return h.hexdigest()


def _open(path: str | os.PathLike):
    import av

    p = Path(path)
    if not p.exists():
        raise BadInputError(f"no such file: {p}")
    if p.is_dir():
        raise BadInputError(f"is a directory, not a media file: {p}")
    if p.stat().st_size == 0:
        raise BadInputError(f"empty file (0 bytes): {p}")
    try:
        return av.open(str(p))
    except av.error.FFmpegError as e:  # InvalidDataError and friends
        raise BadInputError(f"not a media file ffmpeg can read: {p.name} ({e.strerror or e})") from None


def probe(path: str | os.PathLike) -> MediaInfo:
    """List a file's audio, subtitle and video streams; raise BadInputError if it is not usable media."""
    with _open(path) as c:
        duration = float(c.duration / 1_000_000) if c.duration else 0.0
        info = MediaInfo(path=str(path), format=c.format.name, duration=duration)
        a_i = s_i = 0
        for s in c.streams:
            meta = dict(s.metadata or {})
            if s.type == "audio":
                layout = s.codec_context.layout
                names = [ch.name for ch in layout.channels] if layout else []
                info.audio.append(
                    AudioStream(
                        index=a_i,
                        stream_index=s.index,
                        codec=s.codec_context.name,
                        channels=s.codec_context.channels,
                        layout=layout.name if layout else "",
                        channel_names=names,
                        sample_rate=s.codec_context.sample_rate or 0,
                        language=meta.get("language"),
                        title=meta.get("title"),
                        default=bool(s.disposition & 1) if hasattr(s, "disposition") else False,
                    )
                )
                a_i += 1
                if not duration and s.duration and s.time_base:
                    info.duration = float(s.duration * s.time_base)
            elif s.type == "subtitle":
                codec = s.codec_context.name if s.codec_context else "unknown"
                info.subtitles.append(
                    SubtitleStream(
                        index=s_i,
                        stream_index=s.index,
                        codec=codec,
                        language=meta.get("language"),
                        title=meta.get("title"),
                        text_based=codec in TEXT_SUBTITLE_CODECS,
                    )
                )
                s_i += 1
            elif s.type == "video" and not info.video:
                if s.disposition and int(s.disposition) & 0x400:  # attached picture (cover art)
                    continue
                info.video = True
                info.width = s.codec_context.width
                info.height = s.codec_context.height
                info.fps = float(s.average_rate) if s.average_rate else None
    if not info.audio:
        raise BadInputError(f"no audio stream in {Path(path).name}")
    return info


def _pick_stream(info: MediaInfo, audio_track: int | None) -> AudioStream:
    if audio_track is None:
        defaults = [a for a in info.audio if a.default]
        return defaults[0] if defaults else info.audio[0]
    if not 0 <= audio_track < len(info.audio):
        raise BadInputError(f"audio track {audio_track} does not exist (the file has {len(info.audio)}: 0..{len(info.audio) - 1})")
    return info.audio[audio_track]


def iter_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int | None = ANALYSIS_RATE,
    audio_track: int | None = None,
    channels: str = "mono",
    start: float = 0.0,
    end: float | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Iterator[np.ndarray]:
    """Yield decoded audio blocks as float32 arrays shaped (samples, channels).

    channels: "mono" (downmix), "centre" (the FC channel of a 5.1/7.1 track, else a downmix),
    "stereo" or "native" (keep the track's layout). sample_rate None keeps the native rate.
    """
    import av

    info = probe(path)
    stream_meta = _pick_stream(info, audio_track)
    duration = max(info.duration, 1e-6)
    with _open(path) as c:
        stream = c.streams[stream_meta.stream_index]
        stream.thread_type = "AUTO"
        out_rate = sample_rate or stream_meta.sample_rate
        want_centre = channels == "centre" and stream_meta.has_centre
        if channels in ("mono", "centre"):
            layout = "mono"
        elif channels == "stereo":
            layout = "stereo"
        else:
            layout = stream_meta.layout or None
        resampler = av.AudioResampler(format="flt", layout=layout, rate=out_rate)
        centre_idx = stream_meta.channel_names.index("FC") if want_centre else None
        if start > 0:
            c.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)
        last_report = [-1.0]

        def report(t: float | None) -> None:
            if t is not None and t - last_report[0] >= 1.0:
                last_report[0] = t
                if cancel is not None and cancel.cancelled:
                    raise Cancelled()
                progress(min(1.0, t / duration), "decoding")

        try:
            for packet in c.demux(stream):
                for frame in _decode_safely(packet):
                    t = float(frame.pts * frame.time_base) if frame.pts is not None else None
                    if end is not None and t is not None and t >= end:
                        return
                    if centre_idx is not None:
                        mono = _channel(frame, centre_idx)
                        if frame.sample_rate == out_rate:  # fast path: the channel as it is, no resampler
                            yield _trim_block(mono.reshape(-1, 1), t, start, end, out_rate)
                            report(t)
                            continue
                        nf = av.AudioFrame.from_ndarray(mono, format="fltp", layout="mono")
                        nf.sample_rate = frame.sample_rate
                        nf.pts = frame.pts
                        nf.time_base = frame.time_base
                        frame = nf
                    for rf in resampler.resample(frame):
                        arr = rf.to_ndarray().reshape(-1, len(rf.layout.channels))
                        yield _trim_block(arr, t, start, end, out_rate)
                    report(t)
            for rf in resampler.resample(None):
                yield rf.to_ndarray().reshape(-1, len(rf.layout.channels))
        except av.error.FFmpegError as e:
            raise BadInputError(f"could not decode {Path(path).name}: {e}") from None
    progress(1.0, "decoded")


def _channel(frame, index: int) -> np.ndarray:
    """One channel of a decoded frame as a contiguous float32 row of shape (1, samples)."""
    plane = frame.to_ndarray()
    if frame.format.is_planar:
        mono = plane[index : index + 1]
    else:
        mono = plane.reshape(-1, len(frame.layout.channels)).T[index : index + 1]
    return np.ascontiguousarray(mono.astype(np.float32) if mono.dtype.kind == "f" else _int_to_float(mono))


def _int_to_float(a: np.ndarray) -> np.ndarray:
    return (a.astype(np.float32) / float(np.iinfo(a.dtype).max)).astype(np.float32)


def _decode_safely(packet):
    import av

    try:
        return packet.decode()
    except av.error.InvalidDataError:
        return []  # a damaged packet in an otherwise readable file: skip it, keep going


def _trim_block(arr: np.ndarray, t: float | None, start: float, end: float | None, rate: int) -> np.ndarray:
    if t is None:
        return arr
    if start > 0 and t < start:
        skip = int(round((start - t) * rate))
        arr = arr[skip:]
    if end is not None:
        keep = int(round((end - max(t, start)) * rate))
        arr = arr[: max(0, keep)]
    return arr


def load_audio(path: str | os.PathLike, sample_rate: int | None = ANALYSIS_RATE, **kwargs) -> np.ndarray:
    """Decode a whole file (or a start/end window) to float32; mono gives shape (n,), else (n, channels)."""
    blocks = list(iter_audio(path, sample_rate=sample_rate, **kwargs))
    ch = 1 if kwargs.get("channels", "mono") in ("mono", "centre") else None
    if not blocks:
        return np.zeros(0 if ch == 1 else (0, 2), dtype=np.float32)
    audio = np.concatenate(blocks, axis=0)
    return audio[:, 0].copy() if audio.shape[1] == 1 else audio


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a float array (samples[, channels]) with a polyphase filter."""
    if from_rate == to_rate:
        return audio.astype(np.float32, copy=False)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(from_rate, to_rate)
    return resample_poly(audio, to_rate // g, from_rate // g, axis=0).astype(np.float32)


class StreamResampler:
    """Resample float32 blocks shaped (samples[, channels]) one after another, holding only a filter's worth of
    state: PyAV's (libswresample's) stateful resampler, the one :func:`iter_audio` uses, so the concatenated output
    equals resampling the whole signal at once. ``layout`` "mono" downmixes; blocks come out shaped (n,) for mono.
    """

    def __init__(self, from_rate: int, to_rate: int, channels: int = 1, layout: str = "mono") -> None:
        import av

        if channels not in (1, 2):
            raise BadInputError(f"stream resampling takes mono or stereo blocks (got {channels} channels)")
        self.from_rate, self.to_rate, self.channels = int(from_rate), int(to_rate), int(channels)
        self._in_layout = "mono" if channels == 1 else "stereo"
        self._mono = layout == "mono"
        self._resampler = av.AudioResampler(format="flt", layout=layout, rate=self.to_rate)
        self._pts = 0

    def _frames_to_array(self, frames) -> np.ndarray:
        parts = [f.to_ndarray().reshape(-1, len(f.layout.channels)) for f in frames]
        width = 1 if self._mono else 2
        out = np.concatenate(parts) if parts else np.zeros((0, width), np.float32)
        return out[:, 0].copy() if self._mono else out

    def push(self, block: np.ndarray) -> np.ndarray:
        """Resampled audio for the next input block (may be a few samples short: the filter's delay)."""
        import av

        a = np.ascontiguousarray(np.asarray(block, dtype=np.float32).reshape(len(block), -1))
        if a.shape[1] != self.channels:
            raise BadInputError(f"block has {a.shape[1]} channels, the resampler was made for {self.channels}")
        if not len(a):
            return self._frames_to_array([])
        frame = av.AudioFrame.from_ndarray(a.reshape(1, -1), format="flt", layout=self._in_layout)
        frame.sample_rate = self.from_rate
        frame.pts = self._pts
        frame.time_base = Fraction(1, self.from_rate)
        self._pts += len(a)
        return self._frames_to_array(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        """The samples still held in the filter; call once after the last block."""
        return self._frames_to_array(self._resampler.resample(None))


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write float audio to WAV/FLAC (chosen by suffix) atomically: a temp file renamed into place."""
    import soundfile as sf

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG"}.get(p.suffix.lower(), "WAV")
    with part_path(p) as tmp:
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sample_rate, format=fmt, subtype="PCM_16")
    return p


def read_audio_file(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a WAV/FLAC file the library wrote itself (fast path, no resampling)."""
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=False)
    return data, rate


def cut_video(source: str | os.PathLike, start: float, end: float, out: str | os.PathLike, audio: str | os.PathLike | None = None) -> Path:
    """Cut [start, end) of the source's video (re-encoded, small H.264) muxed with an optional audio file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with part_path(out, keep_suffix=True) as tmp:
        _ffmpeg_cut(source, start, end, tmp, audio)
    return out


def _ffmpeg_cut(source, start: float, end: float, tmp: Path, audio) -> None:
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{start:.3f}", "-t", f"{max(0.01, end - start):.3f}", "-i", str(source)]
    if audio is not None:
        cmd += ["-i", str(audio), "-map", "0:v:0", "-map", "1:a:0"]
    else:
        cmd += ["-map", "0:v:0", "-map", "0:a:0?"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(tmp)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BadInputError(f"ffmpeg could not cut video from {Path(source).name}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")


def read_audio_span(path: str | os.PathLike, start: float, end: float) -> tuple[np.ndarray, int]:
    """Read [start, end) seconds of a WAV/FLAC file the library wrote, without decoding the rest."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        rate = f.samplerate
        a = max(0, int(round(start * rate)))
        b = min(f.frames, max(a, int(round(end * rate))))
        f.seek(a)
        data = f.read(b - a, dtype="float32", always_2d=False)
    return data, rate


def video_frame_jpeg(path: str | os.PathLike, t: float, *, width: int = 320) -> bytes | None:
    """Decode the first video frame at or after t seconds and return it as JPEG bytes (None if no video)."""
    import io

    import av

    with _open(path) as c:
        if not c.streams.video:
            return None
        stream = c.streams.video[0]
        c.seek(int(max(0.0, t) / stream.time_base), stream=stream, backward=True)
        for frame in c.decode(stream):
            if frame.pts is not None and float(frame.pts * frame.time_base) + 1e-3 < t:
                continue
            img = frame.to_image()
            if img.width > width:
                img = img.resize((width, int(img.height * width / img.width)))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=80)
            return buf.getvalue()
    return None


def check_complete(path: str | os.PathLike, info: MediaInfo | None = None, audio_track: int | None = None) -> None:
    """Cheaply check that audio near the declared end decodes; raise BadInputError for truncated files."""
    import av

    info = info or probe(path)
    if info.duration < 3.0:
        return
    stream_meta = _pick_stream(info, audio_track)
    target = max(0.0, info.duration - 3.0)
    last_t = None
    with _open(path) as c:
        stream = c.streams[stream_meta.stream_index]
        try:
            c.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
            for packet in c.demux(stream):
                for frame in _decode_safely(packet):
                    if frame.pts is not None:
                        last_t = float(frame.pts * frame.time_base)
                if last_t is not None and last_t >= target - 5.0:
                    break
        except av.error.FFmpegError:
            last_t = None
    if last_t is None or last_t < target - 5.0:
        raise BadInputError(f"{Path(path).name} looks truncated or damaged: no audio decodes near its end "
                            f"({info.duration:.1f} s declared)")


# -- encoding for a response -------------------------------------------------------------------------
AUDIO_FORMATS = ("wav", "mp3", "flac", "opus", "aac", "pcm")


def encode_audio(audio: np.ndarray, rate: int, fmt: str = "wav") -> bytes:
    """Encode float mono audio for an HTTP response: wav, flac (soundfile), mp3/opus/aac (PyAV), pcm (s16le raw)."""
    fmt = (fmt or "wav").lower()
    x = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    if fmt in ("wav", "flac"):
        import soundfile as sf

        buf = io.BytesIO()
        sf.write(buf, x, rate, format=fmt.upper(), subtype="PCM_16")
        return buf.getvalue()
    if fmt == "pcm":
        return (x * 32767.0).astype("<i2").tobytes()
    if fmt in ("mp3", "opus", "aac"):
        return _encode_av(x, rate, fmt)
    raise BadInputError(f"unsupported audio format '{fmt}' (use one of: {', '.join(AUDIO_FORMATS)})")


def _encode_av(x: np.ndarray, rate: int, fmt: str) -> bytes:
    import av

    container_fmt, codec, out_rate = {"mp3": ("mp3", "libmp3lame", rate), "opus": ("ogg", "libopus", 48000), "aac": ("adts", "aac", rate)}[fmt]
    if fmt == "mp3" and rate not in (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000):
        out_rate = 24000
    if out_rate != rate:
        x = resample(x, rate, out_rate)
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        if fmt == "mp3":
            return _encode_lameenc(x, out_rate)
        raise BadInputError(f"this PyAV build has no {codec} encoder for {fmt}") from None
    buf = io.BytesIO()
    with av.open(buf, "w", format=container_fmt) as c:
        st = c.add_stream(codec, rate=out_rate)
        st.layout = "mono"
        if fmt == "mp3":
            st.bit_rate = 64000
        frame_size = 1152 if fmt == "mp3" else 960 if fmt == "opus" else 1024
        pcm = (x * 32767.0).astype(np.int16)
        pts = 0
        for i in range(0, len(pcm), frame_size):
            block = pcm[i : i + frame_size]
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = out_rate
            frame.pts = pts
            pts += len(block)
            for p in st.encode(frame):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    return buf.getvalue()


def _encode_lameenc(x: np.ndarray, rate: int) -> bytes:
    try:
        import lameenc
    except ImportError:
        raise BadInputError("mp3 needs PyAV with libmp3lame or the lameenc package (pip install lameenc)") from None
    enc = lameenc.Encoder()
    enc.set_bit_rate(64)
    enc.set_in_sample_rate(rate)
    enc.set_channels(1)
    enc.set_quality(2)
    return bytes(enc.encode((x * 32767.0).astype(np.int16).tobytes()) + enc.flush())
