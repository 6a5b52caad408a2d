"""Language of a document with lingua (offline: its models ship in the wheel).

lingua's low-accuracy mode (trigram models) is used: about 70 MB resident and well under a second to
load, against about 1 GB and many seconds for the high-accuracy models, whose gain is on short phrases,
not on documents. Only a sample of the text is looked at (two windows: the start and the middle):
detection time grows with the sample, and a few hundred characters decide a document's language.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

MIN_CHARS = 40  # below this a guess is noise: the language stays unknown ("")
SAMPLE_CHARS = 300
MIN_CONFIDENCE = 0.5
_LETTER = re.compile(r"[^\W\d_]")


@cache
def _detector() -> Any:
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()


def _sample(text: str) -> str:
    if len(text) <= 2 * SAMPLE_CHARS:
        return text
    mid = len(text) // 2
    return f"{text[:SAMPLE_CHARS]}\n{text[mid:mid + SAMPLE_CHARS]}"


def detect_language(text: str) -> str:
    """ISO 639-1 code ("en", "de", ...) of ``text``, or "" when it is too short or the guess is unsure."""
    sample = _sample(text)
    if len(_LETTER.findall(sample)) < MIN_CHARS:
        return ""
    values = _detector().compute_language_confidence_values(sample)
    if not values or values[0].value < MIN_CONFIDENCE:
        return ""
    return values[0].language.iso_code_639_1.name.lower()
