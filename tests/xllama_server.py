"""llama.cpp's own OpenAI-compatible HTTP server (through the xllamacpp wheel) for the chat tests.

``python tests/xllama_server.py MODEL.gguf [--n-ctx N] [--threads N]`` loads the model, prints the address it
listens on (``http://127.0.0.1:PORT``, a free port) as its only stdout line, and serves until it is killed.
"""

from __future__ import annotations

import argparse
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = a.model
    params.n_ctx = a.n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = a.threads
    params.cpuparams_batch.n_threads = a.threads
    params.verbosity = -1
    params.ui = False
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    server = xllamacpp.Server(params)
    print(server.listening_address, flush=True)
    threading.Event().wait()  # serve until SIGTERM/SIGKILL
    return 0


if __name__ == "__main__":
    sys.exit(main())
