"""Voice Weaver's domain package: library store, media, analysis stages, jobs and the service facade."""

import os

__version__ = "0.1.0"  # the one version string (pyproject reads it; the CLI, the panel API and /api/health show it)

# No telemetry: pyannote.audio 4 reports usage to otel.pyannote.ai unless this is false. Set before any stage can
# import it (the diarize stage, whisperX's diarization).
os.environ["PYANNOTE_METRICS_ENABLED"] = "false"
