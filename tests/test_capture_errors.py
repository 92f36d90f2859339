"""capture raises its own errors; the library's door to it (pipeline.workflows.recordings) hands them on as pipeline.errors.

No sound server is reachable in the subprocess test (PULSE_SERVER points at a socket that does not exist), so the
real capture code fails the real way; the mapping test builds each capture error and checks the class it becomes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from capture import errors as ce
from pipeline import errors as pe
from pipeline.workflows.recordings import as_weaver_error, capture_errors

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("theirs, ours", [
    (ce.CaptureBadInputError, pe.BadInputError), (ce.DeviceNotFoundError, pe.NotFoundError),
    (ce.AudioBackendError, pe.BackendUnavailableError), (ce.ScreenUnavailableError, pe.BackendUnavailableError),
    (ce.CaptureStorageError, pe.StorageError), (ce.CaptureError, pe.WeaverError),
])
def test_each_capture_error_becomes_the_library_error_of_its_kind(theirs, ours):
    mapped = as_weaver_error(theirs("one line"))
    assert type(mapped) is ours and str(mapped) == "one line"
    assert mapped.exit_code == theirs.exit_code  # the CLI exits with the same code either way
    with pytest.raises(ours, match="^one line$") as info:
        with capture_errors():
            raise theirs("one line")
    assert isinstance(info.value.__cause__, theirs)


def test_capture_errors_leaves_other_exceptions_alone():
    with pytest.raises(KeyError):
        with capture_errors():
            raise KeyError("x")


PROBE = """
import sys
from pathlib import Path
from pipeline.errors import BackendUnavailableError
from pipeline.workflows.recordings import CaptureManager, list_devices
for call in (list_devices, lambda: CaptureManager(Path(sys.argv[1])).start(source="loopback")):
    try:
        call()
    except BackendUnavailableError as e:
        print(type(e).__name__ + ": " + str(e))
"""


def test_no_sound_server_reaches_the_library_as_backend_unavailable(tmp_path):
    env = dict(os.environ, PULSE_SERVER=f"unix:{tmp_path}/nothing/native", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2, r.stdout + r.stderr
    assert all(line.startswith("BackendUnavailableError: ") and "PulseAudio/PipeWire" in line for line in lines)
