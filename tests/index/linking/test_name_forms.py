"""Name forms the resolver reads through: extraction residue, abbreviations defined in parentheses,
partnership names, territories."""

from __future__ import annotations

import pytest

from index.linking.candidates import defines_abbreviation
from index.linking.detect import _join_legal_forms
from index.linking.names import residue_stems
from index.linking.sports import sports_sense
from index.linking.territories import is_known_place, territory_of
from index.records import ORG, Mention


def test_residue_stems() -> None:
    assert residue_stems("NorandaNoranda") == [("Noranda", False)]
    assert residue_stems("Texacos") == [("Texaco", True)]
    assert residue_stems("VWs") == [("VW", True)]
    assert residue_stems("West Germanys") == [("West Germany", True)]
    assert residue_stems("Ross") == []  # a double s is no lost possessive
    assert residue_stems("Bus") == []  # too short to tell
    assert residue_stems("Lavrov") == []


def test_schwartz_hearst_definitions() -> None:
    assert defines_abbreviation("GRA", "W.R. Grace")
    assert defines_abbreviation("BOJ", "Bank of Japan")
    assert defines_abbreviation("TLV", "Grupo Televisa")
    assert not defines_abbreviation("DD", "DuPont")  # a ticker, not an abbreviation
    assert not defines_abbreviation("UK", "Conservative Party")
    assert not defines_abbreviation("X", "Xerox")  # one letter says nothing


def _ner(text: str, *names: str) -> list[Mention]:
    out = []
    for name in names:
        s = text.index(name)
        out.append(Mention(s, s + len(name), name, ORG, "ner"))
    return out


def test_partnership_names_join_but_lists_of_firms_do_not() -> None:
    text = "said lead manager Stifel, Nicolaus and Co Inc. The debentures are convertible."
    joined = _join_legal_forms(text, _ner(text, "Stifel", "Nicolaus", "Co Inc."))
    assert [m.text for m in joined] == ["Stifel, Nicolaus and Co Inc."]
    text = "Shares of Merrill Lynch, Goldman Sachs and Co fell."
    kept = _join_legal_forms(text, _ner(text, "Merrill Lynch", "Goldman Sachs and Co"))
    assert [m.text for m in kept] == ["Merrill Lynch", "Goldman Sachs and Co"]


def test_territory_names() -> None:
    assert territory_of("U.K.") == territory_of("United Kingdom") == territory_of("UK") == "gb"
    assert territory_of("Holland") == territory_of("the Netherlands".removeprefix("the ")) == "nl"
    assert territory_of("U.S.") == territory_of("United States") == "us"
    assert territory_of("Baghdad") is None  # a city is not its country
    assert territory_of("Paxar") is None


def test_known_places_include_cities() -> None:
    assert is_known_place("London") and is_known_place("Baghdad") and is_known_place("U.K.")
    assert not is_known_place("Halliburton")


@pytest.mark.parametrize(
    ("text", "name", "team"),
    [
        ("Australia won by five wickets at Lord's.", "Australia", True),
        ("Miami beat Dallas 27-10 on Sunday.", "Dallas", True),
        ("England's captain said the side was ready.", "England", True),
        ("Wales 13-12 France was the score at half-time.", "France", True),
        ("Britain won the right to host the summit.", "Britain", False),
        ("Sanctions against Iran were tightened.", "Iran", False),
        ("Russia beat Ukraine to the contract.", "Ukraine", False),
        ("France's defence minister met the press.", "France", False),
        ("Britain's negotiating team left Brussels.", "Britain", False),
    ],
)
def test_sports_sense(text: str, name: str, team: bool) -> None:
    s = text.index(name)
    assert sports_sense(text, s, s + len(name)) is team


def _spans(text: str, *names: tuple[str, str, int]) -> list[Mention]:
    """Mentions of ``(surface, type, occurrence)`` in ``text``."""
    out = []
    for surface, typ, nth in names:
        at = -1
        for _ in range(nth + 1):
            at = text.index(surface, at + 1)
        out.append(Mention(at, at + len(surface), surface, typ, "ner"))
    return sorted(out, key=lambda m: m.start)


@pytest.mark.parametrize(
    ("text", "names", "joined"),
    [
        # the head word NER left out, used alone elsewhere: it joins
        ("Talks with Envases Metalurgicos went well. Envases said so.",
         [("Metalurgicos", ORG, 0), ("Envases", "place", 1)], "Envases Metalurgicos"),
        # the head found as a mention of its own right before the name: one mention
        ("Kestrel Dynamics cut jobs. Kestrel said the market was weak.",
         [("Kestrel", "place", 0), ("Dynamics", ORG, 0), ("Kestrel", "place", 1)], "Kestrel Dynamics"),
        # a known place before an organisation stays apart ("the U.K. Treasury")
        ("The U.K. Treasury said so. U.K. officials agreed.",
         [("U.K.", "place", 0), ("Treasury", ORG, 0), ("U.K.", "place", 1)], None),
        ("Officials at London Metals met. London is cold.",
         [("Metals", ORG, 0), ("London", "place", 1)], None),
        # a capitalised word never used alone as a name, or a person's name, is no head
        ("Yesterday Microsoft said profits rose. Microsoft shares fell.",
         [("Microsoft", ORG, 0), ("Microsoft", ORG, 1)], None),
        ("Smith Barney advised. Smith said nothing.",
         [("Barney", ORG, 0), ("Smith", "person", 1)], None),
    ],
)
def test_a_clipped_head_word_rejoins_its_organisation(text: str, names: list, joined: str | None) -> None:
    from index.linking.detect import _restore_clipped_heads

    out = _restore_clipped_heads(text, _spans(text, *names))
    multi = [m.text for m in out if " " in m.text]
    assert multi == ([joined] if joined else [])
    if joined:
        assert [m.type for m in out if m.text == joined] == [ORG]
    assert all(a.end <= b.start for a, b in zip(out, out[1:], strict=False))  # no overlaps left
