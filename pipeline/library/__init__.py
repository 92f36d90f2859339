"""SQL by area: plain functions taking the library database."""
