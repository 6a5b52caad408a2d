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

MIN_LETTERS = 60  # below this many letters a guess is noise: the language stays unknown ("")
MIN_WORD_LETTERS = 20  # letters left once capitalised words are set aside
SAMPLE_CHARS = 300
MIN_CONFIDENCE = 0.8  # a language other than English needs this much of lingua's confidence
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[^\W\d_][\w'’-]*")


@cache
def _detector() -> Any:
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()


def _sample(text: str) -> str:
    if len(text) <= 2 * SAMPLE_CHARS:
        return text
    mid = len(text) // 2
    return f"{text[:SAMPLE_CHARS]}\n{text[mid:mid + SAMPLE_CHARS]}"


def _lower_words(text: str) -> str:
    """The text without capitalised words: names ("Eduard Shevardnadze", "Bonn") are no language's and
    tip trigram models on short texts (an English sentence full of names reads as Latin or Welsh)."""
    return " ".join(w for w in _WORD.findall(text) if not w[0].isupper())


def detect_language(text: str) -> str:
    """ISO 639-1 code ("en", "de", ...) of ``text``, or "" when it is too short or the guess is unsure.

    Unsure means: fewer than ``MIN_LETTERS`` letters, or a language other than English with less than
    ``MIN_CONFIDENCE``. Unknown documents are treated as English, so a doubtful guess keeps English NER.
    """
    sample = _sample(text)
    if len(_LETTER.findall(sample)) < MIN_LETTERS:
        return ""
    words = _lower_words(sample)
    if len(_LETTER.findall(words)) < MIN_WORD_LETTERS:
        return ""
    values = _detector().compute_language_confidence_values(words)
    if not values:
        return ""
    code = values[0].language.iso_code_639_1.name.lower()
    return code if code == "en" or values[0].value >= MIN_CONFIDENCE else ""
