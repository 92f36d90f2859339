"""The local panel: a FastAPI app (token-protected, 127.0.0.1 only) serving the API and a static page."""
