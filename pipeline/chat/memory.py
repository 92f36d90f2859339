"""Long conversations: the model summarises the messages that no longer fit its context, so the persona keeps
what was said (names, facts, promises) beyond the window. The summary goes into the system prompt
(:class:`pipeline.chat.conversation.Conversation` ``summary=``); it is stored by pipeline.library.chat.
"""

from __future__ import annotations

from ..errors import WeaverError
from .providers import ChatProvider
from .reply_shape import ReplyShaper

SUMMARY_MAX_TOKENS = 160
SUMMARY_MAX_CHARS = 600
SUMMARY_INPUT_CHARS = 6000  # the newest part of what is summarised, so the request fits a small context


def transcript_text(messages: list[dict], persona_name: str) -> str:
    """'User: …' / '<Name>: …' lines for the user and assistant messages."""
    lines = []
    for m in messages:
        if m.get("role") in ("user", "assistant") and (m.get("content") or "").strip():
            who = "User" if m["role"] == "user" else persona_name
            lines.append(f"{who}: {m['content'].strip()}")
    return "\n".join(lines)


def summary_request(messages: list[dict], persona_name: str, previous: str = "") -> list[dict]:
    """The chat request asking the model for the summary."""
    text = transcript_text(messages, persona_name)
    if len(text) > SUMMARY_INPUT_CHARS:
        text = text[-SUMMARY_INPUT_CHARS:].split("\n", 1)[-1]
    before = f"Summary of what came before: {previous.strip()}\n\n" if previous.strip() else ""
    return [
        {"role": "system", "content": "You summarise conversations. Write at most four short sentences in the third "
                                      "person. Keep names, facts, places, plans and promises. No preamble."},
        {"role": "user", "content": f"{before}Conversation between the user and {persona_name}:\n{text}\n\n"
                                    "Summarise this conversation."},
    ]


def summarise(provider: ChatProvider, model: str | None, messages: list[dict], persona_name: str,
              previous: str = "") -> str:
    """The model's summary of ``messages`` (and the previous summary), cut at a sentence end, no repeats.
    Raises WeaverError when the provider fails (the caller keeps the old summary)."""
    shaper = ReplyShaper(max_chars=SUMMARY_MAX_CHARS)
    stream = provider.stream_chat(model, summary_request(messages, persona_name, previous),
                                  options={"max_tokens": SUMMARY_MAX_TOKENS, "temperature": 0.2,
                                           "repeat_penalty": 1.15, "seed": 0})
    try:
        for delta in stream:
            shaper.feed(delta)
            if shaper.done:
                break
    finally:
        if hasattr(stream, "close"):
            stream.close()
    shaper.finish(truncated=True)
    text = " ".join(shaper.sentences).strip() or shaper.text.strip()
    if not text:
        raise WeaverError("the model returned an empty summary")
    return text
