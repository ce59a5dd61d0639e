"""Azure meter names -> what they price: model, token kind, deployment type, context tier.

Azure's meter names follow no single scheme: ``gpt 4o 1120 cached Inp Data Zone``,
``gpt-4o-mini-0718-Batch-Outp-glbl``, ``5.6 luna ShortCo Cd Wr PP Gl 1M``,
``gpt4omini-rt-aud1217 cchd Inp DZn``, ``56sol ShCo Cd Inp Fl Gl 1M``. A regular expression alone cannot read
them, so this module does it in two steps, both data:

1. ``MODELS``: a curated, ordered list of patterns over the normalised name, each
   naming the model id it stands for and its *family* (text, audio, realtime,
   transcribe, speech). The family says what an unmarked meter bills: the
   audio-preview meter ``gpt-4o-aud-1217 Inp`` is audio input, its text twin says
   ``txt``.
2. The remaining words: scope (``glbl``, ``Gl``, ``Data Zone``, ``DZn``, ``regnl``,
   ``rg`` ...), mode (``Batch``, ``pp`` = priority processing, ``Flex`` / ``Fl`` = flex
   processing), context (``LongCo`` / ``LoCo`` = the >272k tier), direction, cache read /
   write, modality.

A trailing `` - Preview`` (``GPT 5 Chat Inpt Glbl 1M Tokens - Preview``, as cost exports
spell a meter while its model is in preview) names the same meter.

Meters that bill something other than a model's tokens, or name their model their own way, are read
first, each by a pattern of its own (``_OTHER_METERS``): the built-in tools' fees (``file-search-tool-calls-glbl
Calls``: ``file_search`` of the ``built-in-tools`` entry, per 1,000 calls; ``Code-Interpreter-global
Session``: ``code_interpreter``, per session), whisper (``Speech-to-Text-Batch-Whisper-glbl Unit``:
``audio_minute``, billed per hour of audio), dall-e-3 (``Image-Dall-E-3 Std LowRes-glbl Images``, per 100
images: LowRes is the square 1024x1024, HighRes the wide sizes) and gpt-image-1 (``gpt-image-1-inp-txt-glbl
Tokens``: text and image input, cached text input, image output). The kind's ``PriceKind.per`` and
``unit`` say what a price is per; ``meter.pricing.retail`` turns a meter's unit of measure into it.

One meter can bill two kinds of a model's usage: a text-to-speech model's output is audio, and gpt-image-1's
is image tokens, so their audio (image) output meter also prices output reported without that detail
(``MeterKey.also``; ``billed_kind`` maps such a kind to the meter's).

Anything unclear raises ``UnmappedMeter`` with a reason and a category; nothing
is guessed. One parser, shared by the Retail import, the table generator, the
cross-check and (later) the reconciliation with Azure's cost exports.
Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from meter.pricing.deployment_types import (
    DATA_ZONE_BATCH,
    DATA_ZONE_PRIORITY,
    DATA_ZONE_STANDARD,
    GLOBAL_BATCH,
    GLOBAL_FLEX,
    GLOBAL_PRIORITY,
    GLOBAL_STANDARD,
    STANDARD,
)

LONG_CONTEXT_TOKENS = 272_000
"""The ``LongCo`` meters apply to every token of a call whose input exceeds this."""


@dataclass(frozen=True, slots=True)
class MeterKey:
    """What one meter prices."""

    model: str
    kind: str
    deployment_type: str
    above_input_tokens: int = 0
    also: tuple[str, ...] = field(default=(), compare=False)
    """Other price kinds of the model this meter bills too (see ``billed_kind``)."""


class UnmappedMeter(ValueError):
    """A meter this parser does not turn into a token price; ``category`` groups the reasons."""

    def __init__(self, reason: str, category: str = "unreadable") -> None:
        super().__init__(reason)
        self.category = category


# Families: what a meter without a modality word bills.
TEXT = "text"
AUDIO = "audio"  # audio-preview / gpt-audio / realtime: unmarked = audio, "txt" = text, "img" = image
SPEECH_TO_TEXT = "stt"  # transcribe: modality always written (aud / txt)
TEXT_TO_SPEECH = "tts"  # tts: modality always written

_WORD = r"(?:^|(?<= ))"
_END = r"(?= |$)"


def _p(pattern: str) -> re.Pattern[str]:
    """A pattern over the normalised name, anchored at word boundaries."""
    return re.compile(_WORD + "(?:" + pattern + ")" + _END)


#: (pattern, model id, family), most specific first. The model ids are the table's ids.
MODELS: tuple[tuple[re.Pattern[str], str, str], ...] = tuple((_p(p), m, f) for p, m, f in (
    # GPT-6 (product "Azure OpenAI GPT6": "6-sol ShortCo Inp PP Gl", "6.1-sol LongCo Opt Std DZ")
    (r"(?:gpt )?6\.1 sol", "gpt-6.1-sol", TEXT),
    (r"(?:gpt )?6\.1 terra", "gpt-6.1-terra", TEXT),
    (r"(?:gpt )?6 astra", "gpt-6-astra", TEXT),
    (r"(?:gpt )?6 sol", "gpt-6-sol", TEXT),
    (r"(?:gpt )?6 luna", "gpt-6-luna", TEXT),
    # GPT-5.x (product "Azure OpenAI GPT5"); the Flex meters glue or drop the dot ("56sol", "54 mini")
    (r"(?:gpt )?5\.6 sol|56 ?sol", "gpt-5.6-sol", TEXT),
    (r"(?:gpt )?5\.6 terra|56 ?terra", "gpt-5.6-terra", TEXT),
    (r"(?:gpt )?5\.6 luna|56 ?luna", "gpt-5.6-luna", TEXT),
    (r"(?:gpt )?5\.5 pro|^55 pro", "gpt-5.5-pro", TEXT),
    (r"(?:gpt )?5\.5|^55", "gpt-5.5", TEXT),
    (r"(?:gpt )?5\.4 pro|^54 pro", "gpt-5.4-pro", TEXT),
    (r"(?:gpt )?5\.4 mini|^54 mini", "gpt-5.4-mini", TEXT),
    (r"(?:gpt )?5\.4 nano|^54 nano", "gpt-5.4-nano", TEXT),
    (r"(?:gpt )?5\.4|^54", "gpt-5.4", TEXT),
    (r"(?:gpt )?5\.3 codex", "gpt-5.3-codex", TEXT),
    (r"(?:gpt )?5\.3 chat", "gpt-5.3-chat", TEXT),
    (r"(?:gpt )?5\.2 chat 0210", "gpt-5.2-chat-2026-02-10", TEXT),
    (r"(?:gpt )?5\.2 chat", "gpt-5.2-chat", TEXT),
    (r"(?:gpt )?5\.2 codex", "gpt-5.2-codex", TEXT),
    (r"(?:gpt )?5\.2 pro", "gpt-5.2-pro", TEXT),
    (r"(?:gpt )?5\.2", "gpt-5.2", TEXT),
    (r"(?:gpt )?5\.1 codex max", "gpt-5.1-codex-max", TEXT),
    (r"(?:gpt )?5\.1 codex mini", "gpt-5.1-codex-mini", TEXT),
    (r"(?:gpt )?5\.1 codex", "gpt-5.1-codex", TEXT),
    (r"(?:gpt )?5\.1 chat", "gpt-5.1-chat", TEXT),
    (r"(?:gpt )?5\.1", "gpt-5.1", TEXT),
    (r"(?:gpt )?5 codex", "gpt-5-codex", TEXT),
    (r"(?:gpt )?5 chat", "gpt-5-chat", TEXT),
    (r"(?:gpt )?5 pro", "gpt-5-pro", TEXT),
    (r"(?:gpt )?5 mini", "gpt-5-mini", TEXT),
    (r"(?:gpt )?5 nano", "gpt-5-nano", TEXT),
    (r"gpt 5|^5", "gpt-5", TEXT),
    (r"chat latest 05052026", "chat-latest-2026-05-05", TEXT),
    (r"chat latest 05282026", "chat-latest-2026-05-28", TEXT),
    # GPT-4.x
    (r"(?:gpt )?4\.1 mini", "gpt-4.1-mini", TEXT),
    (r"(?:gpt )?4\.1 nano", "gpt-4.1-nano", TEXT),
    (r"(?:gpt )?4\.1", "gpt-4.1", TEXT),
    (r"gpt 4\.5 0227", "gpt-4.5-preview", TEXT),
    # audio and realtime (most specific first)
    (r"gpt4omini rt (?:aud|txt) 1217", "gpt-4o-mini-realtime-preview-2024-12-17", AUDIO),
    (r"gpt4omini aud 1217", "gpt-4o-mini-audio-preview-2024-12-17", AUDIO),
    (r"gpt 4o rt (?:aud|txt) 1217", "gpt-4o-realtime-preview-2024-12-17", AUDIO),
    (r"gpt 4o rt (?:aud|txt) 0603", "gpt-4o-realtime-preview-2025-06-03", AUDIO),
    (r"gpt 4o aud 1217", "gpt-4o-audio-preview-2024-12-17", AUDIO),
    (r"gpt 4o aud 0603", "gpt-4o-audio-preview-2025-06-03", AUDIO),
    (r"gpt4o (?:realtime|rtime)", "gpt-4o-realtime-preview-2024-10-01", AUDIO),
    (r"gpt realtime 2\.1 mini", "gpt-realtime-2.1-mini", AUDIO),
    (r"gpt realtime 2\.1", "gpt-realtime-2.1", AUDIO),
    (r"gpt realtime 2", "gpt-realtime-2", AUDIO),
    (r"gpt rt (?:aud|txt|img) mn", "gpt-realtime-mini-2025-12-15", AUDIO),
    (r"gpt rt (?:aud|txt|img) mini", "gpt-realtime-mini", AUDIO),
    (r"gpt rt 1\.5", "gpt-realtime-1.5", AUDIO),
    (r"gpt rt (?:aud|txt|img) 0828", "gpt-realtime", AUDIO),
    (r"gpt aud mn", "gpt-audio-mini-2025-12-15", AUDIO),
    (r"gpt aud mini", "gpt-audio-mini", AUDIO),
    (r"gpt aud 1\.5", "gpt-audio-1.5", AUDIO),
    (r"gpt aud 0828", "gpt-audio", AUDIO),
    (r"gpt4o mn trscb", "gpt-4o-mini-transcribe-2025-12-15", SPEECH_TO_TEXT),
    (r"gpt 4o mini transcribe", "gpt-4o-mini-transcribe", SPEECH_TO_TEXT),
    (r"gpt 4o tcrb d", "gpt-4o-transcribe-diarize", SPEECH_TO_TEXT),
    (r"gpt 4o transcribe", "gpt-4o-transcribe", SPEECH_TO_TEXT),
    (r"gpt4o mn tts", "gpt-4o-mini-tts-2025-12-15", TEXT_TO_SPEECH),
    (r"gpt 4o mini tts", "gpt-4o-mini-tts", TEXT_TO_SPEECH),
    # GPT-4o and GPT-4o mini text
    (r"gpt 4o mini ?0718", "gpt-4o-mini-2024-07-18", TEXT),
    (r"gpt 4o 0513", "gpt-4o-2024-05-13", TEXT),
    (r"gpt 4o 0806", "gpt-4o-2024-08-06", TEXT),
    (r"gpt 4o 1120", "gpt-4o-2024-11-20", TEXT),
    # reasoning
    (r"o1 preview", "o1-preview", TEXT),
    (r"o1 mini", "o1-mini", TEXT),
    (r"o1 pro", "o1-pro", TEXT),
    (r"o1(?: 1217)?", "o1", TEXT),
    (r"o3 deep research(?: 0626)?", "o3-deep-research", TEXT),
    (r"o3 mini(?: 0131)?", "o3-mini", TEXT),
    (r"o3 pro", "o3-pro", TEXT),
    (r"o3(?: 0416)?", "o3", TEXT),
    (r"o4 mini(?: 0416)?", "o4-mini", TEXT),
    (r"codex mini", "codex-mini", TEXT),
    (r"computer use", "computer-use-preview", TEXT),
    # embeddings
    (r"(?:text )?embedding 3 large", "text-embedding-3-large", TEXT),
    (r"(?:text )?embedding 3 small", "text-embedding-3-small", TEXT),
    (r"embedding ada", "text-embedding-ada-002", TEXT),
    # open-weight models sold as Azure OpenAI
    (r"gpt oss 120b", "gpt-oss-120b", TEXT),
    # legacy GPT-3.5 and GPT-4 (still billed); ids spelled gpt-3.5, as model names are normalised
    (r"gpt 35 (?:turbo ?16k|trb16k) (?:batch )?(?:0125|125)", "gpt-3.5-turbo-0125", TEXT),
    (r"gpt 35 (?:turbo ?16k|trb16k) 1106", "gpt-3.5-turbo-1106", TEXT),
    (r"gpt 35 trb16k batch", "gpt-3.5-turbo-1106", TEXT),
    (r"gpt 35 turbo ?16k", "gpt-3.5-turbo-16k-0613", TEXT),
    (r"gpt 35 turbo ?4k", "gpt-3.5-turbo-0613", TEXT),
    (r"gpt 35 turbo instruct", "gpt-3.5-turbo-instruct-0914", TEXT),
    (r"gpt 4 turbo vision 128k", "gpt-4-vision-preview", TEXT),
    (r"gpt 4 turbo (?:batch )?128k|gpt 4 turbo128k", "gpt-4-turbo-2024-04-09", TEXT),
    (r"gpt 4 32k", "gpt-4-32k-0613", TEXT),
    (r"gpt 4 8k", "gpt-4-0613", TEXT),
))

# Meters that are not per-token prices of a model call, by the word that gives them away.
_NOT_INFERENCE: tuple[tuple[re.Pattern[str], str, str], ...] = tuple((re.compile(p), c, r) for p, c, r in (
    (r"(?:^| )(?:ft|dev ft|fine tuned|rft|grader|grdr|training|trng|hosting|hstng)(?= |$)", "fine-tuning",
     "fine-tuning (training, hosting, fine-tuned inference, graders): not in the built-in tables"),
    (r"(?:^| )(?:img|image)(?= |$)|gpt img|gpt image|^image 2", "image",
     "image tokens of a model other than gpt-image-1 (gpt-image-1-mini, -1.5, Image 2, realtime image input): "
     "not read"),
    (r"^az ", "legacy-meter", "a pre-2024 'Az-' meter with no deployment scope, superseded by the scoped meters"),
    (r"babbage|davinci", "completions", "a /completions base model: meter does not meter the legacy Completions API"),
    (r"file search|speech|characters|code interpreter|assistants", "not-tokens", "not a token price"),
    (r"gpt latest", "unknown-model", "'gpt-latest' (Media): which model it bills is not documented"),
))

TOOLS_MODEL = "built-in-tools"
"""The model of the built-in tools' fee meters (``meter.pricing.model.TOOLS_MODEL``: its rows price them for every
model)."""

NO_AZURE_METER = frozenset({"web_search"})
"""Price kinds meter counts that no Azure meter bills (no Retail meter and no Microsoft price was found for web
search through Responses or chat): counted, never priced, never in an export."""

_SCOPE_WORD = r"(glbl|global|gl|datazone|dzone|dz|dzn|rgnl|regnl|regional|rg)"
_DALL_E_3 = {("std", "lowres"): "image_standard", ("std", "highres"): "image_standard_wide",
             ("hd", "lowres"): "image_hd", ("hd", "highres"): "image_hd_wide"}
_GPT_IMAGE_1 = {("inp", "", "txt"): "input", ("inp", "", "img"): "image_input",
                ("inp", "cached", "txt"): "cached_input", ("output", "", "img"): "image_output"}
_OTHER_METERS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), what) for p, what in (
    (rf"^file search tool calls {_SCOPE_WORD} calls$", "file_search"),
    (rf"^code interpreter {_SCOPE_WORD}(?: ep)? session$", "code_interpreter"),
    (rf"^image dall e 3 (std|hd) (lowres|highres) {_SCOPE_WORD}(?: ep)? images$", "dall-e-3"),
    (rf"^speech to text batch whisper {_SCOPE_WORD} unit$", "whisper"),
    (rf"^gpt image 1 (inp|output) (?:(cached) )?(txt|img) {_SCOPE_WORD} tokens$", "gpt-image-1"),
))
"""Meters read by a pattern of their own, before the model meters (what they bill is in the module docstring)."""

BILLED_WITH: dict[tuple[str, str], str] = {("gpt-image-1", "output"): "image_output"}
"""(model, kind) -> the price kind whose meter bills it too, for models whose family does not say it (a
text-to-speech model's output is billed by its audio output meter: ``billed_kind``)."""


def billed_kind(model: str, kind: str) -> str:
    """The price kind of the meter that bills ``kind`` of ``model``'s usage: ``audio_output`` for a text-to-speech
    model's output, ``image_output`` for gpt-image-1's, else ``kind``."""
    if kind == "output" and _family(model) == TEXT_TO_SPEECH:
        return "audio_output"
    return BILLED_WITH.get((model, kind), kind)


def _family(model: str) -> str:
    for _, known, family in MODELS:
        if known == model:
            return family
    return TEXT


def _other_meter(name: str) -> MeterKey | None:
    """One of ``_OTHER_METERS``, read; ``None`` when the name is none of them."""
    for pattern, what in _OTHER_METERS:
        m = pattern.match(name)
        if m is None:
            continue
        *words, scope_word = m.groups()
        dtype = _deployment_type(_SCOPE[scope_word], batch=False, priority=False)
        if what in ("file_search", "code_interpreter"):
            return MeterKey(TOOLS_MODEL, what, dtype)
        if what == "dall-e-3":
            return MeterKey("dall-e-3", _DALL_E_3[(words[0], words[1])], dtype)
        if what == "whisper":
            return MeterKey("whisper", "audio_minute", dtype)
        kind = _GPT_IMAGE_1.get((words[0], words[1] or "", words[2]))
        if kind is None:
            raise UnmappedMeter("gpt-image-1's cached image input: no usage kind counts cached image tokens", "image")
        also = tuple(k for (model, k), billed in BILLED_WITH.items() if model == "gpt-image-1" and billed == kind)
        return MeterKey("gpt-image-1", kind, dtype, also=also)
    return None


_SCOPE = {
    "global": "global", "glbl": "global", "gl": "global", "glb": "global", "gbl": "global",
    "datazone": "datazone", "dzone": "datazone", "dz": "datazone", "dzn": "datazone",
    "regnl": "regional", "rgnl": "regional", "regional": "regional", "regn": "regional", "rg": "regional",
}
_INPUT = frozenset({"inp", "inpt", "input", "in"})
_OUTPUT = frozenset({"outp", "output", "out", "opt", "outpt"})
_CACHED = frozenset({"cd", "cached", "cchd", "ccchd", "cched", "cache"})
_WRITE = frozenset({"wr", "write"})
_AUDIO_WORDS = frozenset({"aud", "audio"})
_TEXT_WORDS = frozenset({"txt", "text"})
_NOISE = frozenset({"tokens", "token", "1m", "1k", "std", "shortco", "shco", "prvw", "tkn"})
_LONG_CONTEXT = frozenset({"longco", "loco"})
_FLEX = frozenset({"flex", "fl"})
_PREVIEW_SUFFIX = re.compile(r"\s+-\s*preview\s*$", re.IGNORECASE)


def normalise(meter_name: str) -> str:
    """Lower case, separators as single spaces, glued words apart (``BatchOutp`` -> ``batch outp``); a
    trailing `` - Preview`` dropped (the same meter, named while its model is in preview)."""
    text = _PREVIEW_SUFFIX.sub("", meter_name).lower().replace("-", " ").replace("_", " ")
    text = re.sub(r"\bdata\s+zone\b", "datazone", text)
    text = re.sub(r"(batch|cached|cchd)(?=[a-z])", r"\1 ", text)
    text = re.sub(r"realtimeprvw", "realtime prvw ", text)
    text = re.sub(r"\b(aud|txt)(inp|outp)\b", r"\1 \2", text)
    text = re.sub(r"\b(aud|txt)(\d{4})\b", r"\1 \2", text)
    return " ".join(text.split())


def parse_meter(meter_name: str, product: str = "") -> MeterKey:
    """Read one meter name; raises ``UnmappedMeter`` when it is not a token price this table keeps."""
    name = normalise(meter_name)
    other = _other_meter(name)
    if other is not None:
        return other
    for pattern, category, reason in _NOT_INFERENCE:
        if pattern.search(name):
            raise UnmappedMeter(reason, category)
    for pattern, model, family in MODELS:
        m = pattern.search(name)
        if m is not None:
            rest = (name[:m.start()] + " " + name[m.end():]).split()
            return _read_rest(model, family, rest, m.group(0).split())
    raise UnmappedMeter(f"no known model in the meter name {meter_name!r}", "unknown-model")


def _read_rest(model: str, family: str, rest: list[str], model_words: list[str]) -> MeterKey:
    scope = None
    batch = priority = flex = cached = write = long_context = False
    direction = None
    modality = None
    # Flags inside the matched model words (``gpt 4o rt aud 1217``, ``gpt 35 trb16k batch``) come
    # first; words after the model override them (``gpt aud mini txt inp``: text input).
    flags = [w for w in model_words if w in _AUDIO_WORDS or w in _TEXT_WORDS or w == "batch"]
    for word in [*flags, *rest]:
        if word in _SCOPE:
            scope = _SCOPE[word]
        elif word == "batch":
            batch = True
        elif word == "pp":
            priority = True
        elif word in _FLEX:
            flex = True
        elif word in _LONG_CONTEXT:
            long_context = True
        elif word in _INPUT:
            direction = "input"
        elif word in _OUTPUT:
            direction = "output"
        elif word in _CACHED:
            cached = True
        elif word in _WRITE:
            write = True
        elif word in _AUDIO_WORDS:
            modality = "audio"
        elif word in _TEXT_WORDS:
            modality = "text"
        elif word in _NOISE or word.isdigit():
            continue
        else:
            raise UnmappedMeter(f"unexpected word {word!r} after the model name")
    if scope is None:
        raise UnmappedMeter("no deployment scope (Global / Data Zone / Regional) in the meter name", "no-scope")
    if direction is None and write:
        direction = "input"  # "Cd Wr": a cache write is an input price
    if direction is None:
        if model.startswith("text-embedding"):
            direction = "input"  # embedding meters name no direction: they bill input tokens
        else:
            raise UnmappedMeter("no token direction (input / output) in the meter name")
    if modality is None:
        if family in (SPEECH_TO_TEXT, TEXT_TO_SPEECH):
            raise UnmappedMeter("no modality (aud / txt) in a speech meter name")
        modality = "audio" if family == AUDIO else "text"
    kind = _kind(direction, modality, cached=cached, write=write)
    deployment_type = _deployment_type(scope, batch=batch, priority=priority, flex=flex)
    also = ("output",) if family == TEXT_TO_SPEECH and kind == "audio_output" else ()
    return MeterKey(model=model, kind=kind, deployment_type=deployment_type,
                    above_input_tokens=LONG_CONTEXT_TOKENS if long_context else 0, also=also)


def _kind(direction: str, modality: str, *, cached: bool, write: bool) -> str:
    if direction == "output":
        if cached or write:
            raise UnmappedMeter("a cached output is not a price kind")
        return "audio_output" if modality == "audio" else "output"
    if write:
        if modality == "audio":
            raise UnmappedMeter("an audio cache write is not a price kind")
        return "cache_write"
    if cached:
        return "cached_audio_input" if modality == "audio" else "cached_input"
    return "audio_input" if modality == "audio" else "input"


def _deployment_type(scope: str, *, batch: bool, priority: bool, flex: bool = False) -> str:
    modes = [name for name, on in (("Batch", batch), ("Priority", priority), ("Flex", flex)) if on]
    if len(modes) > 1:
        raise UnmappedMeter(f"both {' and '.join(modes)} in one meter name")
    if scope == "regional":
        if batch or priority or flex:
            raise UnmappedMeter("a regional Batch, Priority or Flex meter has no deployment type", "no-deployment-type")
        return STANDARD
    if flex:
        # Flex processing is a tier of Global Standard deployments only (flex-processing.md, 2026-09-24)
        if scope != "global":
            raise UnmappedMeter("a Data Zone Flex meter has no deployment type", "no-deployment-type")
        return GLOBAL_FLEX
    if scope == "global":
        return GLOBAL_BATCH if batch else GLOBAL_PRIORITY if priority else GLOBAL_STANDARD
    return DATA_ZONE_BATCH if batch else DATA_ZONE_PRIORITY if priority else DATA_ZONE_STANDARD
