"""Language of a document with lingua (offline: its models ship in the wheel).

lingua's low-accuracy mode (trigram models) is used: about 70 MB resident and well under a second to
load, against about 1 GB and many seconds for the high-accuracy models, whose gain is on short phrases,
not on documents. Only a sample of the text is looked at (a few windows spread over it).
"""

from __future__ import annotations

from functools import cache
from typing import Any

MIN_CHARS = 40  # below this a guess is noise: the language stays unknown ("")
SAMPLE_CHARS = 1500
MIN_CONFIDENCE = 0.5


@cache
def _detector() -> Any:
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()


def _sample(text: str) -> str:
    if len(text) <= 3 * SAMPLE_CHARS:
        return text
    mid = len(text) // 2
    return "\n".join((text[:SAMPLE_CHARS], text[mid:mid + SAMPLE_CHARS], text[-SAMPLE_CHARS:]))


def detect_language(text: str) -> str:
    """ISO 639-1 code ("en", "de", ...) of ``text``, or "" when it is too short or the guess is unsure."""
    sample = _sample(text)
    if sum(ch.isalpha() for ch in sample) < MIN_CHARS:
        return ""
    values = _detector().compute_language_confidence_values(sample)
    if not values or values[0].value < MIN_CONFIDENCE:
        return ""
    return values[0].language.iso_code_639_1.name.lower()
