"""Test/bench harness (not part of the product): a private PulseAudio daemon with null sinks, and a private Xvfb display.

Both run as child processes of the caller in a temporary folder (their own socket / display number), so
they never collide with a desktop's sound server or with other tests, and are stopped by pid.

    with private_pulseaudio(sinks=("vw_test",)) as pa:     # sets PULSE_SERVER for this process
        pa.play(wav, device="vw_test")                      # paplay into the null sink
        ...record "vw_test.monitor" with CaptureSession / soundcard...
    with xvfb_display() as display:                         # sets DISPLAY
        subprocess.run(["xsetroot", "-solid", "red"])
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


def pulseaudio_available() -> bool:
    return all(shutil.which(b) for b in ("pulseaudio", "pactl", "paplay"))


def xvfb_available() -> bool:
    return shutil.which("Xvfb") is not None


@dataclass
class PulseEnv:
    dir: Path
    server: str  # value for PULSE_SERVER
    proc: subprocess.Popen
    env: dict = field(default_factory=dict)  # environment for pactl/paplay children

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pactl(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=20)
        if check and r.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {r.stderr.strip()}")
        return r.stdout.strip()

    def load_null_sink(self, name: str, rate: int = 48000, channels: int = 2) -> int:
        """Add a null sink (its monitor is '<name>.monitor'); returns the module index."""
        return int(self.pactl("load-module", "module-null-sink", f"sink_name={name}", f"rate={rate}",
                              f"channels={channels}"))

    def unload_module(self, index: int) -> None:
        self.pactl("unload-module", str(index))

    def set_default_sink(self, name: str) -> None:
        self.pactl("set-default-sink", name)

    def play(self, wav: str | os.PathLike, device: str | None = None, wait: bool = True) -> subprocess.Popen:
        """paplay a file into a sink; waits for it to end unless wait=False (then returns the process)."""
        cmd = ["paplay"] + ([f"--device={device}"] if device else []) + [str(wav)]
        p = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait:
            _, err = p.communicate(timeout=120)
            if p.returncode != 0:
                raise RuntimeError(f"paplay failed: {err.decode(errors='replace').strip()}")
        return p

    def kill(self) -> None:
        """Kill the daemon at once (simulates a crashed sound server)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


@contextmanager
def private_pulseaudio(sinks: tuple[str, ...] = ("vw_test",), rate: int = 48000, default: str | None = None,
                       set_env: bool = True, timeout: float = 15.0) -> Iterator[PulseEnv]:
    """Start a private PulseAudio (no default modules) with the given null sinks; stop it on exit.

    set_env: point this process at it (PULSE_SERVER) and reconnect soundcard if it was imported.
    """
    if not pulseaudio_available():
        raise FileNotFoundError("pulseaudio/pactl/paplay not installed (Debian: apt-get install pulseaudio pulseaudio-utils)")
    d = Path(tempfile.mkdtemp(prefix="vw-pulse-"))
    sock = d / "native"
    denv = {k: v for k, v in os.environ.items() if k not in ("PULSE_SERVER", "DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}
    denv.update(HOME=str(d), XDG_RUNTIME_DIR=str(d), PULSE_RUNTIME_PATH=str(d), PULSE_STATE_PATH=str(d),
                XDG_CONFIG_HOME=str(d))
    cmd = ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--system=false",
           "--disallow-exit", "--log-target=stderr", "-L", f"module-native-protocol-unix socket={sock} auth-anonymous=1"]
    for s in sinks:
        cmd += ["-L", f"module-null-sink sink_name={s} rate={rate}"]
    log = open(d / "pulseaudio.log", "wb")
    proc = subprocess.Popen(cmd, env=denv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    server = f"unix:{sock}"
    cenv = dict(os.environ, PULSE_SERVER=server)
    pa = PulseEnv(dir=d, server=server, proc=proc, env=cenv)
    saved = os.environ.get("PULSE_SERVER")
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"pulseaudio exited at start: {(d / 'pulseaudio.log').read_text(errors='replace')[-500:]}")
            if sock.exists() and subprocess.run(["pactl", "info"], env=cenv, capture_output=True, timeout=10).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("pulseaudio did not come up in time")
            time.sleep(0.05)
        if default or sinks:
            pa.set_default_sink(default or sinks[0])
        if set_env:
            os.environ["PULSE_SERVER"] = server
            from capture.devices import reset_backend

            import sys
            if "soundcard" in sys.modules:
                reset_backend()
        yield pa
    finally:
        stop_process(proc)
        if set_env:
            restore_env("PULSE_SERVER", saved)
        shutil.rmtree(d, ignore_errors=True)


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Terminate a helper process, killing it if it does not exit within timeout."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def restore_env(name: str, saved: str | None) -> None:
    """Put an environment variable back as it was (removing it if it was unset)."""
    if saved is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = saved


def wait_for_x_socket(number: int, proc: subprocess.Popen, deadline: float) -> None:
    """Wait until display `number` accepts connections: on its socket, and through libX11 as GTK and Qt clients
    open it (xdpyinfo, when installed)."""
    import shutil
    import socket

    path = f"/tmp/.X11-unix/X{number}"
    xdpyinfo = shutil.which("xdpyinfo")
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(path)
                error = None
            except OSError as e:
                error = e
        if error is None:
            if xdpyinfo is None:
                return
            r = subprocess.run([xdpyinfo, "-display", f":{number}"], capture_output=True, text=True, timeout=10)
            if r.returncode == 0:
                return
            error = (r.stderr or r.stdout).strip()[-200:]
        if proc.poll() is not None:
            raise RuntimeError(f"Xvfb :{number} exited (code {proc.returncode}) before accepting connections")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Xvfb :{number} does not accept connections on {path}: {error}")
        time.sleep(0.05)


@contextmanager
def xvfb_display(width: int = 640, height: int = 480, depth: int = 24, set_env: bool = True,
                 timeout: float = 15.0) -> Iterator[str]:
    """Start Xvfb on a free display number (it picks one itself); yields ':N'; sets DISPLAY if set_env."""
    if not xvfb_available():
        raise FileNotFoundError("Xvfb not installed (Debian: apt-get install xvfb)")
    r, w = os.pipe()
    # -noreset: by default an X server resets when its last client leaves, and refuses connections meanwhile; a
    # probe connection closing just before the next client connects made trayer fail "cannot open display" in CI
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", f"{width}x{height}x{depth}", "-nolisten", "tcp",
                             "-noreset"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(w)
    saved = os.environ.get("DISPLAY")
    try:
        buf = b""
        deadline = time.monotonic() + timeout
        import select

        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                raise RuntimeError("Xvfb did not start")
            ready, _, _ = select.select([r], [], [], left)
            if ready:
                chunk = os.read(r, 64)
                if not chunk:
                    raise RuntimeError("Xvfb did not report its display")
                buf += chunk
        display = f":{int(buf.strip())}"
        wait_for_x_socket(int(buf.strip()), proc, deadline)
        if set_env:
            os.environ["DISPLAY"] = display
        yield display
    finally:
        os.close(r)
        stop_process(proc)
        if set_env:
            restore_env("DISPLAY", saved)


def speech_wav(path: str | os.PathLike, text: str, voice: str = "en", speed: int = 160) -> Path:
    """Synthesize text with espeak-ng into a WAV (test material)."""
    p = Path(path)
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(p), text], check=True, capture_output=True,
                   timeout=60)
    return p


@contextmanager
def tiny_tmpfs(size: str = "256k", parent: str | os.PathLike | None = None) -> Iterator[Path]:
    """Mount a tiny tmpfs (root only) to provoke a real ENOSPC; raises PermissionError when mount is refused."""
    mnt = Path(tempfile.mkdtemp(prefix="vw-tiny-", dir=parent))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(mnt, ignore_errors=True)
        raise PermissionError(f"cannot mount a tmpfs: {r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        shutil.rmtree(mnt, ignore_errors=True)
