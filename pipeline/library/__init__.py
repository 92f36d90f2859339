"""SQL of the library, one module per area (plain functions taking the Library/db object)."""
