"""Reading the prompt out of a request body, as a token sequence.

One word is one token and every message costs three framing tokens, plus three
for priming the reply; the count is crude but deterministic, so tests can
predict it. A sequence (not just a count) is kept because prompt caching is a
matter of shared prefixes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Tokens = tuple[str, ...]
_PRIMING = ("<|assistant|>", "<|im|>", "<|start|>")


def text_of(content: Any) -> str:
    """The text of a message ``content``: a string, or a list of parts with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [text_of(part.get("text", part.get("content"))) for part in content if isinstance(part, dict)]
        return " ".join(text for text in texts if text)
    return ""


def _message_tokens(role: str, text: str) -> list[str]:
    return [f"<|{role}|>", "<|im|>", *text.split(), "<|end|>"]


def _tokenize(messages: Iterable[tuple[str, str]]) -> Tokens:
    tokens: list[str] = []
    for role, text in messages:
        tokens.extend(_message_tokens(role, text))
    tokens.extend(_PRIMING)
    return tuple(tokens)


def chat_prompt(body: dict[str, Any]) -> Tokens:
    """The prompt tokens of a chat completions body (``messages``)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return _tokenize(())
    return _tokenize(
        (str(m.get("role", "user")), text_of(m.get("content"))) for m in messages if isinstance(m, dict)
    )


def responses_prompt(body: dict[str, Any]) -> Tokens:
    """The prompt tokens of a Responses body (``instructions`` and ``input``)."""
    messages: list[tuple[str, str]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        messages.append(("developer", instructions))
    items = body.get("input")
    if isinstance(items, str):
        messages.append(("user", items))
    elif isinstance(items, list):
        for item in items:
            if isinstance(item, str):
                messages.append(("user", item))
            elif isinstance(item, dict):
                messages.append((str(item.get("role", "user")), text_of(item.get("content", item.get("output")))))
    return _tokenize(messages)


def continued(previous: Tokens, reply: str, prompt: Tokens) -> Tokens:
    """The prompt of a turn chained with ``previous_response_id``: the earlier prompt and reply come first.

    That is how the service bills a chained turn (the whole conversation is
    input again), and why such turns hit the prompt cache.
    """
    return (*previous[:-len(_PRIMING)], *_message_tokens("assistant", reply), *prompt)


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """Each input of an embeddings body as text (token-id lists become their ids)."""
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return [" ".join(str(v) for v in value)]
        return [v if isinstance(v, str) else " ".join(str(x) for x in v) if isinstance(v, list) else "" for v in value]
    return [""]


def mentions(tokens: Tokens, word: str) -> bool:
    """Does the prompt contain ``word`` (case-insensitive, inside any token)?"""
    needle = word.lower()
    return any(needle in token.lower() for token in tokens)
