from __future__ import annotations

import pytest

from index.errors import PersonaeError
from index.linking.detect import Detector, load_nlp, merge_mentions, ner_windows, trim_span
from index.linking.registry import Registry
from index.records import ORG, OTHER, PERSON, PLACE, Entity, Mention


def test_trim_span_drops_the_and_possessive() -> None:
    text = "the European Union's plan"
    s, e = trim_span(text, 0, len("the European Union's"))
    assert text[s:e] == "European Union"
    text2 = "Lavrov’s comments"
    s, e = trim_span(text2, 0, 8)
    assert text2[s:e] == "Lavrov"


def test_ner_types_and_no_dates(seed_text: str) -> None:
    det = Detector(Registry())  # empty registry: spaCy alone (plus rescan)
    ms = det.detect(seed_text)
    by_text = {m.text: m.type for m in ms}
    assert by_text["Sergei Lavrov"] == PERSON
    assert by_text["Moscow"] == PLACE
    assert by_text["NBC News"] == ORG
    assert not any(m.text.startswith(("Monday", "Feb.", "this week")) for m in ms)
    assert all(m.type in (PERSON, ORG, PLACE, OTHER) for m in ms)
    assert all(seed_text[m.start : m.end] == m.text for m in ms)
    assert not any(m.text.lower().startswith("the ") for m in ms)


def test_gazetteer_finds_titles_acronyms_and_adjectives(seed_registry: Registry, seed_text: str) -> None:
    det = Detector(seed_registry)
    ms = det.detect(seed_text)
    texts = [m.text for m in ms]
    assert "Russian foreign minister" in texts  # "The Russian foreign minister also said ..."
    assert any(m.text == "Russian Foreign Minister" and m.source == "title" for m in ms)
    assert "U.S." in texts and "EU" in texts and "NATO" in texts
    assert "Rules Out" not in texts  # rejected surface in seeds/entities.jsonl
    # no overlaps
    spans = sorted((m.start, m.end) for m in ms)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_acronym_case_rule_and_longest_match() -> None:
    reg = Registry()
    reg.add(Entity("united-states", "United States", PLACE, ("US", "U.S.")))
    reg.add(Entity("us-state-department", "U.S. State Department", ORG, ("State Department",)))
    det = Detector(reg, use_ner=False)
    ms = det.detect("Tell us what the US and the U.S. State Department want.")
    assert [(m.text, m.type) for m in ms] == [("US", PLACE), ("U.S. State Department", ORG)]


def test_detect_many_matches_detect(seed_registry: Registry) -> None:
    det = Detector(seed_registry)
    texts = ["Lavrov met Rubio in Riyadh.", "Zelensky spoke to NBC News.", ""]
    assert det.detect_many(texts) == [det.detect(t) for t in texts]


def test_merge_prefers_longer_or_equal_gazetteer() -> None:
    ner = [Mention(0, 6, "Russia", PLACE, "ner"), Mention(10, 25, "Foo Bar Limited", ORG, "ner")]
    gaz = [Mention(0, 6, "Russia", PLACE, "gazetteer"), Mention(10, 13, "Foo", ORG, "gazetteer")]
    out = merge_mentions(ner, gaz)
    assert [(m.text, m.source) for m in out] == [("Russia", "gazetteer"), ("Foo Bar Limited", "ner")]


def test_missing_model_is_one_line_error() -> None:
    with pytest.raises(PersonaeError, match="not installed"):
        load_nlp("no_such_model_xyz")


def test_ner_windows_cover_capitalised_words_only() -> None:
    text = (
        "the council met on monday and talked for hours about roads. But the vote failed again. "
        "Later Angela Merkel spoke in Berlin, then everyone went home for the night. It rained on "
        "the staff of the IT department until morning."
    )
    spans = ner_windows(text, 2)
    covered = "|".join(text[s:e] for s, e in spans)
    assert "Angela Merkel spoke in Berlin" in covered and "IT department" in covered  # "IT" is not "it"
    assert "council" not in covered and "vote failed" not in covered  # "But" opens no window
    assert "rained" not in covered  # neither does a sentence-initial "It"
    for s, e in spans:  # whole words: cut at whitespace, never inside one
        assert (s == 0 or text[s - 1].isspace()) and (e == len(text) or text[e].isspace())
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))  # merged, in order
    assert ner_windows(text, 0) == [(0, len(text))]
    assert ner_windows("", 4) == [] and ner_windows("no names here at all.", 4) == []


@pytest.mark.parametrize("registry", ["empty", "seed"])
def test_windowed_ner_finds_what_whole_text_ner_finds(
    registry: str, seed_registry: Registry, seed_text: str
) -> None:
    """NER over windows (the default) keeps exactly the mentions NER over the whole text keeps."""
    reg = Registry() if registry == "empty" else seed_registry
    texts = [
        seed_text,
        "prices rose again this week, the ministry said. Analysts at Goldman Sachs in New York expect the "
        "Bank of England to act; the decision, they said, would come from Threadneedle Street.",
    ]
    whole = Detector(reg, window=0).detect_many(texts)
    windowed = Detector(reg, window=4).detect_many(texts)
    assert windowed == whole
    assert any(m.text == "Goldman Sachs" for m in windowed[1])
    for text, ms in zip(texts, windowed, strict=True):
        assert all(text[m.start : m.end] == m.text for m in ms)
