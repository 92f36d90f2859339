"""`weaver` command line. Long commands show a rich progress bar on stderr; Ctrl-C cancels cleanly.

Conventions: commands that create something print its id as the last line of stdout; list/show commands
accept --json; errors are one line on stderr with a non-zero exit (traceback only with --debug).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from pipeline import __version__

from . import (cli_analysis, cli_capture, cli_chat, cli_labels, cli_library, cli_lines, cli_panel, cli_scripts,
               cli_tracks, cli_voices)
from .commands import (COMMANDS, EXTRA_PARSERS, UsageError, command, err, fmt_time, out, out_json,  # noqa: F401
                       progress_bar, raise_usage, service)

# The command modules, in the order their subcommands appear in `weaver --help`. A new area: write
# trayapp/cli_<area>.py (add_parsers(sub) + @command handlers, importing from trayapp.commands) and list it here.
AREAS = (cli_library, cli_capture, cli_chat, cli_lines, cli_tracks, cli_analysis, cli_scripts, cli_labels, cli_panel,
         cli_voices)


# Environment switches read when the libraries load: no tqdm bars (model loading, downloads), no Hugging Face or
# transformers progress bars and advisories on the user's terminal.
QUIET_ENV = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def quiet_third_party(debug: bool = False) -> None:
    """Keep third-party warnings and progress bars off the terminal; ``--debug`` leaves them alone.

    Our own output (rich progress, one-line errors, ``warning:`` lines) does not use the warnings module, so every
    Python warning seen here comes from a library (webrtcvad's pkg_resources notice, transformers' FutureWarnings,
    torch's UserWarnings...): none is something the user can act on. Call before the heavy imports.
    """
    if debug:
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    warnings.simplefilter("ignore")
    try:  # when transformers is already loaded the environment switch came too late: set its verbosity directly
        tf_logging = sys.modules.get("transformers.utils.logging")
        if tf_logging is not None:
            tf_logging.set_verbosity_error()
            tf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - best effort on a library's internals
        pass


# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="weaver", description="Voice Weaver: movie and capture dialogue → character clips, voices and chat (all local).")
    p.add_argument("--version", action="version", version=f"weaver {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    for area in AREAS:
        area.add_parsers(sub)
    for extra in EXTRA_PARSERS:
        if not any(extra is area.add_parsers for area in AREAS):
            extra(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args[: args.index("--")] if "--" in args else "--debug" in args
    quiet_third_party(debug)
    if debug:
        os.environ.setdefault("WEAVER_DEBUG", "1")  # engines with their own logs (llama.cpp) show them too
    from pipeline.errors import Cancelled, WeaverError

    parser = build_parser()
    a = parser.parse_args(argv)
    if not a.command:
        from .app import run_app

        return run_app(debug=a.debug) or 0
    try:
        return COMMANDS[a.command](a) or 0
    except Cancelled:
        err("weaver: cancelled")
        return 130
    except KeyboardInterrupt:
        err("weaver: cancelled")
        return 130
    except WeaverError as e:
        if a.debug:
            raise
        err(f"weaver: error: {e}")
        return e.exit_code
    except UsageError as e:
        parser.error(str(e))
        return 2
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: one line unless --debug
        if a.debug:
            raise
        err(f"weaver: internal error: {type(e).__name__}: {e} (run with --debug for details)")
        return 70


if __name__ == "__main__":
    sys.exit(main())
