"""Name normalisation shared by detection, candidate generation and the corpus pass.

Tokens keep their character offsets; the normalised forms fold case, accents and dots ("U.S." → "us") so
that two spellings of one name meet in a dictionary lookup.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

# Dotted abbreviations ("U.S.", "U.K.") are one token; otherwise runs of word characters.
_TOKEN_RE = re.compile(r"[^\W\d_](?:\.[^\W\d_])+\.?|\w+")
_APOS = "'’"


class Token(NamedTuple):
    """A word of a text (a tuple: made by the hundred thousand per build, where a dataclass is slower)."""

    start: int
    end: int
    text: str
    norm: str


@lru_cache(maxsize=1 << 16)
def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return s.casefold().replace(".", "")


def tokenize(text: str) -> list[Token]:
    """Word tokens with a normalised form; a possessive ``'s`` is dropped (``Russia's`` → ``russia``)."""
    out: list[Token] = []
    for m in _TOKEN_RE.finditer(text):
        s, e = m.span()
        tok = m.group()
        if tok in ("s", "S") and s > 0 and text[s - 1] in _APOS and out and out[-1].end == s - 1:
            continue
        out.append(Token(s, e, tok, _fold(tok)))
    return out


@lru_cache(maxsize=1 << 16)
def normalize_name(s: str) -> str:
    """Casefold, strip accents and punctuation, ``U.S.`` → ``us``, drop possessive ``'s``, collapse spaces."""
    return " ".join(t.norm for t in tokenize(s))


_TRANSLIT = [
    (re.compile(r"(?:iy|yy|ij|yi|ii)$"), "y"),
    (re.compile(r"(?:ei|ey)$"), "ey"),
    (re.compile("kh"), "h"),
]


def variant_key(s: str) -> str:
    """A looser key than :func:`normalize_name` that folds common transliteration variants
    (Zelenskyy/Zelensky/Zelenskiy, Sergei/Sergey)."""
    toks = []
    for t in normalize_name(s).split():
        for rx, rep in _TRANSLIT:
            t = rx.sub(rep, t)
        toks.append(t)
    return " ".join(toks)


def slugify(s: str) -> str:
    return "-".join(normalize_name(s).split()) or "x"



__all__ = ["Token", "tokenize", "normalize_name", "variant_key", "slugify"]


# ---------------------------------------------------------------- keys for spellings and transliterations
# Name particles belong to the surname ("von der Leyen", "bin Laden", "de Gaulle", "al-Assad").
PARTICLES = frozenset(
    "von van der den de da di du del della des dos das do ter ten bin ibn al el la le zu af av".split()
)
_VOWELS = frozenset("aeiouy")


@lru_cache(maxsize=1 << 16)
def ascii_key(s: str) -> str:
    """:func:`normalize_name` of ``s`` transliterated to ASCII (Cyrillic, Greek, Arabic script, diacritics):
    "Борис Ельцин" and "Boris El'tsin" meet, as do "Schröder" and "Schroder"."""
    from normality import ascii_text

    if any("\u0400" <= c <= "\u04ff" for c in s):  # Cyrillic: the English (BGN) romanisation, "Yeltsin"
        s = _cyrillic().transliterate(s)
    return normalize_name(ascii_text(s) or s).replace("'", "")


@lru_cache(maxsize=1)
def _cyrillic():  # type: ignore[no-untyped-def]
    import icu

    return icu.Transliterator.createInstance("Russian-Latin/BGN")


@lru_cache(maxsize=1 << 16)
def skeleton(word: str) -> str:
    """A phonetic blocking key: the consonants of the ASCII form, doubled letters once, "ph" as "f".

    Transliteration variants mostly differ in vowels ("Yeltsin"/"Eltsin", "Osama"/"Usama",
    "Laden"/"Ladin", "Sergei"/"Sergey"), which this drops; different names keep different consonants
    ("John"/"Joan" → "jhn"/"jn").
    """
    w = "".join(c for c in ascii_key(word) if c.isalpha()).replace("ph", "f")
    out: list[str] = []
    for c in w:
        if c in _VOWELS or (out and out[-1] == c):
            continue
        out.append(c)
    return "".join(out)


def surname_words(words: list[str]) -> list[str]:
    """The surname of a person's name words: the last word with any particles before it
    (["Ursula", "von", "der", "Leyen"] → ["von", "der", "Leyen"]); the name itself if one word."""
    i = len(words) - 1
    while i > 1 and words[i - 1].casefold() in PARTICLES:
        i -= 1
    return words[i:]


def residue_stems(text: str) -> list[tuple[str, bool]]:
    """What a name may be under residue that text conversion leaves on it: a word doubled by extraction
    ("NorandaNoranda" → "Noranda", anchor text repeated) and a possessive that lost its apostrophe
    ("Texacos stock" → "Texaco"). Each stem comes with whether it is a lost possessive, which may also be a
    name that simply ends in "s" ("Williams") and so never stands for a person."""
    out: list[tuple[str, bool]] = []
    half = len(text) // 2
    if " " not in text and len(text) >= 6 and len(text) % 2 == 0 and text[:half] == text[half:]:
        out.append((text[:half], False))
    last = text.split()[-1] if text.split() else ""
    acronym_s = len(last) >= 3 and last[:-1].isupper()  # "VWs"
    if (len(last) >= 4 or acronym_s) and last.endswith("s") and last[-2].isalpha() and last[-2] not in "sS'’":
        out.append((text[:-1], True))
    return out
