"""Resumable jobs that combine stages and the library: ingest, analysis, recordings."""
