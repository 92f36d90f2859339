"""Voice Weaver's domain package: library store, media, analysis stages, jobs and the service facade."""

__version__ = "0.1.0"
