"""Chat with a character (library code: no database connection of its own, no HTTP server).

Modules: providers (Ollama, OpenAI-compatible servers, embedded llama.cpp; registry), persona (draft a persona
from a character's lines), conversation (streaming loop with sentence-by-sentence TTS; its sentence splitter is
pipeline.text.sentences, re-exported here), cards (Character Card V2 JSON/PNG); their tables and SQL are in pipeline.library.chat.
Client libraries (ollama, openai, xllamacpp) load only when a provider is used.
"""

from .cards import export_card, import_card, read_card, write_card_json, write_card_png
from .conversation import Conversation, Reply, transcribe_utterance, voice_tts
from .persona import Persona, draft_persona
from .providers import (
    ChatModelMissingError,
    ChatProvider,
    EmbeddedLlamaProvider,
    ModelInfo,
    OllamaProvider,
    OpenAICompatProvider,
    ProviderStreamError,
    ProviderUnreachableError,
    describe_providers,
    find_ollama_gguf_blobs,
    get_provider,
)
from ..text.sentences import SentenceSplitter, split_sentences

__all__ = [
    "ChatModelMissingError", "ChatProvider", "Conversation", "EmbeddedLlamaProvider", "ModelInfo", "OllamaProvider",
    "OpenAICompatProvider", "Persona", "ProviderStreamError", "ProviderUnreachableError", "Reply", "SentenceSplitter",
    "describe_providers", "draft_persona", "export_card", "find_ollama_gguf_blobs", "get_provider", "import_card",
    "read_card", "split_sentences", "transcribe_utterance", "voice_tts", "write_card_json", "write_card_png",
]
