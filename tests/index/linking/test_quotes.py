from __future__ import annotations

from index.linking.quotes import extract_quotes, find_quotes
from index.linking.resolve import Linker
from index.records import Document, Link


def _speaker_of(quotes, fragment: str) -> str | None:
    hits = [q for q in quotes if fragment in q.text]
    assert len(hits) <= 1
    return hits[0].speaker if hits else None


def test_seed_quotes(seed_linker: Linker, seed_text: str) -> None:
    _, quotes = seed_linker.link_document(Document("seed", "", seed_text))
    assert _speaker_of(quotes, "Territorial concessions") == "sergei-lavrov"
    assert _speaker_of(quotes, "rare earth metals") == "sergei-lavrov"
    assert _speaker_of(quotes, "crafty ideas") == "sergei-lavrov"  # "he asked" after the title paragraph
    assert _speaker_of(quotes, "We will have low chance") == "volodymyr-zelenskyy"
    assert _speaker_of(quotes, "I think President Putin wants peace") == "donald-trump"
    assert _speaker_of(quotes, "The UK is ready") == "keir-starmer"
    for q in quotes:
        assert seed_text[q.start : q.end] == q.text
        assert 0 < q.confidence <= 1


def _link(text: str, surface: str, eid: str, nth: int = 0) -> Link:
    s = -1
    for _ in range(nth + 1):
        s = text.index(surface, s + 1)
    return Link(s, s + len(surface), surface, eid, "person", 1.0, "alias")


def test_patterns_straight_quotes() -> None:
    text = 'Lavrov said: "We are ready to talk to anyone." Later, "There is no deal yet," said Rubio.'
    links = [_link(text, "Lavrov", "lav"), _link(text, "Rubio", "rub")]
    quotes = extract_quotes(text, links)
    assert [(q.text, q.speaker) for q in quotes] == [
        ("We are ready to talk to anyone.", "lav"),
        ("There is no deal yet", "rub"),
    ]


def test_pronoun_uses_subject_not_last_name() -> None:
    text = (
        "Zelenskyy told NBC News that Putin wants more land.\n\n“We will not give up our country,” he said."
    )
    links = [_link(text, "Zelenskyy", "zel"), _link(text, "Putin", "put")]
    quotes = extract_quotes(text, links)
    assert [q.speaker for q in quotes] == ["zel"]


def test_unattributed_and_short_quotes_are_skipped() -> None:
    text = "The so-called “peace plan” was discussed. “Nobody knows what happens next in this war.”"
    assert extract_quotes(text, []) == []
    assert len(find_quotes(text)) == 2
