"""Rewrite other branches' imports after wt-arch's moves (issue 11): python tools/import_moves.py FILE...

Rewrites the plain cases in place and prints the lines it could not decide (by hand: see tools/import_moves.txt).
"""

from __future__ import annotations

import re
import sys

RULES = [
    (r"from (pipeline|\.|\.\.)\.?store import replace_folder", r"from \1.files import replace_folder"),
    (r"\bpipeline\.store\b", "pipeline.library"),
    (r"from \.store import", "from .library import"),
    (r"from \.\.store import", "from ..library import"),
    (r"\bpipeline\.chat\.schema\b", "pipeline.library.chat"),
    (r"\bpipeline\.voices\.schema\b", "pipeline.library.voices"),
    (r"from pipeline\.edits import split_line_at", "from pipeline.text.lines import split_line_at"),
    (r"\bpipeline\.edits\b", "pipeline.library.edits"),
    (r"from pipeline\.workflows\.ingest import insert_segment", "from pipeline.library.lines import insert_segment"),
    (r"from \.cli_more import undo_last_edit", "from .cli_labels import undo_last_edit"),
]
CLI_RULES = [  # only in trayapp/cli_<area>.py modules
    (r"from \.cli import EXTRA_PARSERS, ", "from .commands import "),
    (r"from \.cli import ", "from .commands import "),
    (r"^EXTRA_PARSERS\.append\(add_parsers\)\n", ""),
]
ASK = [r"cli_more", r"EXTRA_PARSERS", r"get_job\b", r"_plugin_migration", r"MIGRATIONS"]

for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    new = text
    rules = RULES + (CLI_RULES if re.search(r"(^|/)cli_\w+\.py$", path) else [])
    for old, rep in rules:
        new = re.sub(old, rep, new, flags=re.M)
    if new != text:
        open(path, "w", encoding="utf-8").write(new)
        print(f"rewrote {path}")
    for n, line in enumerate(new.splitlines(), 1):
        if any(re.search(a, line) for a in ASK):
            print(f"{path}:{n}: check by hand: {line.strip()}")
