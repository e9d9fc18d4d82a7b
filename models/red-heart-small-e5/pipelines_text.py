"""Text inputs of the ``ethics-emotion`` pipeline: validation, normalisation, language detection, routing.

Pure Python (no torch): the pipeline, the orchestrator and the tests share these rules.

Validation (:func:`normalise_text`)
    * ``None`` and non-strings are an :class:`InputTypeError` (a ``TypeError``);
    * the text is NFC-normalised (decomposed Hangul jamo become syllables, so detection and tokenisers see
      the same text), control characters (Unicode ``Cc`` other than tab/newline/carriage return) and
      lone surrogates are replaced by a space;
    * a text that then has no visible character (only whitespace or invisible format characters such as
      zero-width spaces) is an :class:`InputError` (a ``ValueError``);
    * a text longer than ``max_chars`` characters is an :class:`InputError` (the pipeline chunks texts up to
      that limit; see ``truncation``).

Language (:func:`detect_language`)
    ``hangul_share`` = Hangul letters / all letters. ``>= korean_threshold`` (0.7) is ``"ko"``;
    ``>= mixed_threshold`` (0.2) is ``"mixed"``; below that, a text whose letters are mostly Latin is
    ``"en"`` and anything else (no letters at all -- emoji, digits -- or another script) is ``"other"``.

Routing (:func:`route_encoders`)
    Each encoder entry lists the languages it serves (``en``, ``ko``, ``*`` = any). ``"ko"`` text goes to
    the ``ko`` and ``*`` encoders, ``"en"`` text to the ``en`` and ``*`` encoders, ``"mixed"`` text to all
    three kinds, and ``"other"`` text to every enabled encoder (nothing tells which would serve it better).
    If no enabled encoder serves the language, ``unserved_language="error"`` raises
    :class:`UnservedLanguageError`, ``"all"`` falls back to every enabled encoder (reported as
    ``routing: "fallback"``). ``routing="all"`` skips language routing altogether.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from .configuration_redheart_tasks import LANGUAGE_IDS, OTHER_LANGUAGE_ID

#: Languages `detect_language` reports.
LANGUAGES = ("ko", "en", "mixed", "other")
ROUTING_MODES = ("language", "all")
UNSERVED_MODES = ("error", "all")
DEFAULT_MAX_CHARS = 100_000

_KEEP_CONTROL = frozenset("\t\n\r")
_HANGUL_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x3130, 0x318F),  # Hangul Compatibility Jamo
    (0xA960, 0xA97F),  # Hangul Jamo Extended-A
    (0xAC00, 0xD7A3),  # Hangul Syllables
    (0xD7B0, 0xD7FF),  # Hangul Jamo Extended-B
)


class InputError(ValueError):
    """An input the pipeline refuses; ``index`` is its position in the call's inputs (None for a single input)."""

    def __init__(self, message: str, index: int | None = None) -> None:
        self.reason = message
        self.index = index
        super().__init__(message if index is None else f"input [{index}]: {message}")

    def at(self, index: int | None, prefix: str = "") -> InputError:
        """The same error, naming the position of the input in its call (``prefix`` e.g. ``"alternatives[1] "``)."""
        return type(self)(prefix + self.reason, index)


class InputTypeError(InputError, TypeError):
    """An input that is not a string (None, a number, bytes, ...)."""


class UnservedLanguageError(InputError):
    """No enabled encoder serves the language of a text (and ``unserved_language="error"``)."""


def _is_hangul(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _HANGUL_RANGES)


def normalise_text(text: object, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The text the encoders read; raises :class:`InputTypeError` / :class:`InputError` (see module doc)."""
    if text is None:
        raise InputTypeError("got None; expected a non-empty string")
    if not isinstance(text, str):
        raise InputTypeError(f"got {type(text).__name__}; expected a non-empty string")
    text = unicodedata.normalize("NFC", text)
    if any(_is_bad_char(ch) for ch in text):
        text = "".join(" " if _is_bad_char(ch) else ch for ch in text)
    if all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in text):
        raise InputError(
            "empty or whitespace-only text (after removing control and invisible format characters)"
        )
    if len(text) > max_chars:
        raise InputError(f"text has {len(text)} characters, more than max_chars={max_chars}")
    return text


def _is_bad_char(ch: str) -> bool:
    category = unicodedata.category(ch)
    return (category == "Cc" and ch not in _KEEP_CONTROL) or category == "Cs"


@dataclass(frozen=True)
class LanguageInfo:
    """Detected language of one text: ``language`` in :data:`LANGUAGES` and the share it was decided on."""

    language: str
    hangul_share: float
    letters: int

    @property
    def language_id(self) -> int:
        return LANGUAGE_IDS.get(self.language, OTHER_LANGUAGE_ID)


def detect_language(text: str, korean_threshold: float = 0.7, mixed_threshold: float = 0.2) -> LanguageInfo:
    """Hangul share of the letters decides: ``ko`` / ``mixed`` / ``en`` / ``other`` (see module doc)."""
    if not 0.0 < mixed_threshold <= korean_threshold <= 1.0:
        raise ValueError(
            f"need 0 < mixed_threshold <= korean_threshold <= 1, got {mixed_threshold}, {korean_threshold}"
        )
    hangul = latin = other = 0
    for ch in text:
        if _is_hangul(ch):
            hangul += 1
        elif ch.isalpha():
            if ord(ch) < 0x250:  # Basic Latin .. Latin Extended-B
                latin += 1
            else:
                other += 1
    letters = hangul + latin + other
    if letters == 0:
        return LanguageInfo("other", 0.0, 0)
    share = hangul / letters
    if share >= korean_threshold:
        language = "ko"
    elif share >= mixed_threshold:
        language = "mixed"
    elif latin > other:
        language = "en"
    else:
        language = "other"
    return LanguageInfo(language, share, letters)


_SERVED_BY = {"ko": {"ko", "*"}, "en": {"en", "*"}, "mixed": {"ko", "en", "*"}}


def route_encoders(
    language: str,
    encoder_languages: dict[str, list[str]],
    routing: str = "language",
    unserved_language: str = "error",
) -> tuple[tuple[str, ...], str]:
    """The encoders (in config order) that read a text of ``language``, and how they were chosen.

    ``encoder_languages`` maps each *enabled* encoder to its ``languages`` entry. Returns
    ``(names, mode)`` with mode ``"language"``, ``"all"`` or ``"fallback"``.
    """
    if routing not in ROUTING_MODES:
        raise ValueError(f"routing must be one of {ROUTING_MODES}, got {routing!r}")
    if unserved_language not in UNSERVED_MODES:
        raise ValueError(f"unserved_language must be one of {UNSERVED_MODES}, got {unserved_language!r}")
    everything = tuple(encoder_languages)
    if routing == "all" or language not in _SERVED_BY:
        return everything, "all" if routing == "all" else "language"
    wanted = _SERVED_BY[language]
    chosen = tuple(name for name, langs in encoder_languages.items() if wanted & set(langs))
    if chosen:
        return chosen, "language"
    if unserved_language == "all":
        return everything, "fallback"
    served = {name: list(langs) for name, langs in encoder_languages.items()}
    raise UnservedLanguageError(
        f"no enabled encoder serves {language!r} text (encoders and their languages: {served}); add an "
        "encoder for it, or pass unserved_language='all' to read it with every enabled encoder"
    )
