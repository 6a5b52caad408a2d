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
