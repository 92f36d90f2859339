"""The library database, one module per area (plain functions taking the Library/db object)."""
