"""The `weaver` command, the tray icon and the pywebview windows. Faces only: they call pipeline.service."""
