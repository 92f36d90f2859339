"""Chat on the service facade: personas drafted from a character's lines, conversations stored in SQLite,
replies streamed sentence by sentence into the character's voice."""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from .errors import BadInputError, NotFoundError
from .library import labels
from .progress import CancelToken

_PROVIDERS: dict[tuple, object] = {}
_PROVIDERS_LOCK = threading.Lock()


def shared_provider(name: str, **cfg):
    """One provider instance per configuration and process, so an embedded model stays loaded."""
    from .chat.providers import get_provider

    key = (name, tuple(sorted((k, str(v)) for k, v in cfg.items())))
    with _PROVIDERS_LOCK:
        if key not in _PROVIDERS:
            _PROVIDERS[key] = get_provider(name, **cfg)
        return _PROVIDERS[key]


class ChatMixin:
    """Mixed into pipeline.service.Service (uses self.lib, self.settings, self.segments)."""

    def chat_models(self) -> list[dict]:
        """Each provider: reachable or not (with the reason) and its models."""
        from .chat.providers import describe_providers

        return describe_providers(self.settings)

    # -- personas ----------------------------------------------------------------------------------
    def persona_for(self, media_id: int, character: str) -> dict:
        """The character's persona, drafted from their own lines on first use (then editable)."""
        from .chat.persona import draft_persona
        from .library.chat import list_personas, save_persona

        m = self.lib.media(media_id)
        row = labels.character_in(self.lib.db, media_id, character)
        if row is None:
            raise NotFoundError(f"no character '{character}' in item {media_id}")
        existing = list_personas(self.lib.db, character_id=row[0])
        if existing:
            return existing[0].to_dict()
        lines = [s["text"] for s in self.segments(media_id, character=row[1])]
        voices = {v["name"]: v for v in self.voices()}
        voice = next((n for n, v in voices.items() if (v.get("character") or "").lower() == row[1].lower()
                      and v.get("status") == "ready"), "default")
        persona = draft_persona(row[1].title(), lines, m["title"], voice=voice,
                                provider=self.settings.chat_provider, model=self.settings.chat_model)
        persona.character_id = row[0]
        with self.lib.atomic() as db:
            persona.id = save_persona(db, persona)
        return persona.to_dict()

    def personas(self) -> list[dict]:
        from .library.chat import list_personas

        return [p.to_dict() for p in list_personas(self.lib.db)]

    def persona(self, persona_id: int):
        from .library.chat import load_persona

        return load_persona(self.lib.db, persona_id)

    def update_persona(self, persona_id: int, changes: dict) -> dict:
        """Edit a persona's prompt, model, provider, temperature, options or voice, and its generation controls
        (max_tokens, top_p, repetition_penalty, max_chars, stop: typed, range-checked, kept in ``options``)."""
        from .chat.persona import CONTROL_ALIASES, GENERATION_CONTROLS, Persona, generation_control
        from .library.chat import save_persona

        current = self.persona(persona_id).to_dict()
        changes = dict(changes)
        controls = {k: changes.pop(k) for k in list(changes)
                    if k != "temperature" and (k in GENERATION_CONTROLS or k in CONTROL_ALIASES)}
        if controls:
            options = dict(changes.get("options", current.get("options")) or {})
            for k, v in controls.items():
                key, value = generation_control(k, v)
                options.pop(k, None)
                options[key] = value
            changes["options"] = options
        if "example_lines" in changes:  # the editor's lines: whole lines, and the prompt's example block follows
            from .chat.persona import with_examples

            lines = changes["example_lines"]
            if isinstance(lines, str):
                lines = lines.splitlines()
            if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
                raise BadInputError("example_lines must be a list of lines")
            changes["example_lines"] = [x.strip() for x in lines if x.strip()]
            if changes["example_lines"] != current.get("example_lines"):
                prompt = changes.get("system_prompt", current.get("system_prompt") or "")
                changes["system_prompt"] = with_examples(prompt, current["name"], changes["example_lines"],
                                                         current.get("source_title"))
        allowed = {"name", "system_prompt", "model", "provider", "temperature", "options", "voice", "greeting",
                   "example_lines"}
        unknown = set(changes) - allowed
        if unknown:
            raise BadInputError(f"cannot change {', '.join(sorted(unknown))} (editable: {', '.join(sorted(allowed))})")
        current.update(changes)
        if "temperature" in changes:
            t = float(changes["temperature"])
            if not 0.0 <= t <= 2.0:
                raise BadInputError("temperature must be between 0 and 2")
        persona = Persona.from_dict(current)
        with self.lib.atomic() as db:
            save_persona(db, persona)
        return persona.to_dict()

    def import_card(self, path: str) -> dict:
        """Import a card file; the same card again updates its persona (pipeline.workflows.chat)."""
        from .workflows.chat import import_card_file

        return import_card_file(self, path)

    def export_card(self, persona_id: int, path: str) -> str:
        from .workflows.chat import export_card_file

        return export_card_file(self, persona_id, path)

    # -- conversations -------------------------------------------------------------------------------
    def start_conversation(self, persona_id: int) -> int:
        from .library.chat import append_message, create_conversation

        persona = self.persona(persona_id)
        with self.lib.atomic() as db:
            cid = create_conversation(db, persona_id, title=persona.name)
            if (persona.greeting or "").strip():
                append_message(db, cid, "assistant", persona.greeting.strip())
        s = self.settings
        s.last_persona_id = persona_id
        s.save(self.lib.home)
        return cid

    def conversation(self, conversation_id: int) -> list[dict]:
        from .library.chat import conversation_persona, history

        if conversation_persona(self.lib.db, conversation_id) is None:
            raise NotFoundError(f"conversation {conversation_id} does not exist")
        return history(self.lib.db, conversation_id)

    def _provider_for(self, persona):
        from .chat.providers import provider_config

        name = persona.provider or self.settings.chat_provider
        return shared_provider(name, **{k: v for k, v in provider_config(self.settings).get(name, {}).items() if v})

    def chat_send(self, conversation_id: int, text: str, *, speak: bool = False,
                  on_delta: Callable[[str], None] | None = None,
                  on_sentence_audio: Callable[[int, str, np.ndarray, int], None] | None = None,
                  player: Callable[[np.ndarray, int], None] | None = None,
                  cancel: CancelToken | None = None, summarise: bool = True):
        """Send a user message; the reply streams through on_delta and (with speak) each finished sentence is
        synthesised in the persona's voice while the next is generated. Returns pipeline.chat.conversation.Reply.
        When older messages no longer fit the context the model then summarises them (``summarise=False``: the
        caller does it later with :meth:`chat_update_summary`)."""
        from .chat.conversation import Conversation, voice_tts
        from .library.chat import append_message, conversation_persona, history

        persona_id = conversation_persona(self.lib.db, conversation_id)
        if persona_id is None:
            raise NotFoundError(f"conversation {conversation_id} does not exist")
        persona = self.persona(persona_id)
        lib = self.lib

        def store(message: dict) -> None:
            with lib.atomic() as db:
                append_message(db, conversation_id, message["role"], message["content"], partial=message.get("partial", False))

        from .workflows.chat import summary, update_summary

        tts = voice_tts(persona.voice or "default", self.voices_dir) if speak else None
        provider, model = self._provider_for(persona), persona.model or self.settings.chat_model
        conv = Conversation(provider, persona, history(self.lib.db, conversation_id), model=model, tts=tts,
                            player=player, on_message=store, summary=summary(self, conversation_id)[0])
        reply = conv.send(text, on_delta=on_delta, on_sentence_audio=on_sentence_audio, cancel=cancel)
        if summarise and reply.dropped_messages and not reply.cancelled:  # older messages left the window
            update_summary(self, conversation_id, persona, provider, model, reply.dropped_messages)
        return reply

    def listen(self, audio: np.ndarray, rate: int) -> str:
        """Push-to-talk: the text of a short recording (the ASR stage)."""
        from .chat.conversation import transcribe_utterance

        text = transcribe_utterance(audio, rate)
        if not text.strip():
            raise BadInputError("no speech was recognised in the recording")
        return text

    # -- gallery, export, regenerate, summaries (pipeline.workflows.chat) ---------------------------
    def import_card_bytes(self, data: bytes) -> dict:
        from .workflows.chat import import_card_bytes

        return import_card_bytes(self, data)

    def persona_avatar(self, persona_id: int) -> bytes | None:
        from .workflows.chat import avatar_jpeg

        return avatar_jpeg(self, persona_id)

    def persona_card_png(self, persona_id: int) -> bytes:
        from .workflows.chat import card_png

        return card_png(self, persona_id)

    def persona_gallery(self) -> list[dict]:
        from .workflows.chat import gallery

        return gallery(self)

    def export_conversation(self, conversation_id: int, fmt: str = "txt") -> tuple[bytes, str, str]:
        from .workflows.chat import export_conversation

        return export_conversation(self, conversation_id, fmt)

    def chat_undo_last(self, conversation_id: int, expected: str | None = None) -> str:
        from .workflows.chat import undo_last_exchange

        return undo_last_exchange(self, conversation_id, expected)

    def conversation_summary(self, conversation_id: int) -> tuple[str, int]:
        from .workflows.chat import summary

        return summary(self, conversation_id)

    def chat_update_summary(self, conversation_id: int, dropped: int) -> str | None:
        """Summarise the oldest ``dropped`` messages (a Reply's ``dropped_messages``) if no summary covers them."""
        from .library.chat import conversation_persona_id
        from .workflows.chat import update_summary

        persona = self.persona(conversation_persona_id(self.lib.db, conversation_id))
        return update_summary(self, conversation_id, persona, self._provider_for(persona),
                              persona.model or self.settings.chat_model, dropped)

    def persona_conversations(self, persona_id: int) -> list[dict]:
        """A persona's conversations, newest first (NotFoundError for an unknown persona)."""
        from .library.chat import list_conversations

        self.persona(persona_id)
        return list_conversations(self.lib.db, persona_id)

    def conversation_messages(self, conversation_id: int) -> list[dict]:
        """The conversation's chat messages as shown (no summaries): id, role, content, partial, created_at."""
        from .library.chat import messages

        return messages(self.lib.db, conversation_id)
