"""Quote spans and attribution: the shared dev cases, the seed baseline, and cases of our own per pattern."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.linking.quotes import count_quotes, extract_quotes, find_quotes, find_spans
from index.linking.resolve import Linker
from index.records import Document, Link, Quote
from index.store import read_paragraphs
from tests.conftest import shared_path

BASELINE = Path(__file__).parent / "data" / "seed_baseline.json"


def _link_docs(linker: Linker, texts: list[str]) -> list[tuple[str, list[Link], list[Quote]]]:
    docs = [Document(f"t{i}", "", t, "2024-06-01") for i, t in enumerate(texts)]
    linked = linker.link_documents(docs)
    return [(d.text, links, quotes) for d, (links, quotes) in zip(docs, linked, strict=True)]


def _entity_at(text: str, links: list[Link], surface: str) -> str | None:
    s = text.index(surface)
    e = s + len(surface)
    hits = sorted((lk for lk in links if lk.start < e and s < lk.end),
                  key=lambda lk: -(min(e, lk.end) - max(s, lk.start)))
    return hits[0].entity_id if hits else None


def _quote_with(text: str, quotes: list[Quote], inside: str) -> Quote:
    s = text.index(inside)
    hits = [q for q in quotes if q.start <= s and s + len(inside) <= q.end]
    assert len(hits) == 1, (inside, quotes)
    return hits[0]


# ------------------------------------------------------------------ the shared dev cases
def test_quote_cases_all_detected_and_attributed(seed_linker: Linker) -> None:
    folder = shared_path("data", "el-dev", "quote-cases")
    rows = [json.loads(line) for line in (folder / "docs.jsonl").open(encoding="utf-8")]
    docs = [Document(r["id"], r.get("title", ""), r["text"], r.get("date")) for r in rows]
    linked = dict(zip([d.id for d in docs], seed_linker.link_documents(docs), strict=True))
    texts = {d.id: d.text for d in docs}
    expect = [json.loads(line) for line in (folder / "expect.jsonl").open(encoding="utf-8")]
    wrong = []
    for c in expect:
        links, quotes = linked[c["doc"]]
        text = texts[c["doc"]]
        s = text.index(c["inside"])
        hit = [q for q in quotes if q.start <= s and s + len(c["inside"]) <= q.end]
        want = _entity_at(text, links, c["speaker"].partition(":")[2]) if c["speaker"] else None
        if not hit or hit[0].speaker != want or (c["speaker"] and want is None):
            wrong.append((c, hit))
    assert not wrong, wrong
    assert len(expect) == 18


def test_seed_baseline_quotes_keep_their_speakers(seed_linker: Linker, seed_text: str) -> None:
    baseline = json.loads(BASELINE.read_text(encoding="utf-8"))["quotes"]
    _, quotes = seed_linker.link_document(Document("seed", "", seed_text))
    got = {(q.start, q.end): q.speaker for q in quotes}
    assert {(s, e): sp for s, e, sp in baseline}.items() <= got.items()
    for q in quotes:
        assert seed_text[q.start : q.end] == q.text


# ------------------------------------------------------------------ our own cases, two or more per pattern
CASES: list[tuple[str, str, str | None, str]] = [
    # (text, phrase inside the quote, surface of the expected speaker or None, expected how)
    ("“The bridge will open in spring,” said Amelia Hartley at the council meeting.",
     "bridge will open", "Amelia Hartley", "explicit"),
    ("Thomas Brennan told the committee: “Our figures were checked twice.”",
     "figures were checked", "Thomas Brennan", "explicit"),
    ("“We cannot go back to the old rules,” warned Daniel Okafor, speaking in Lagos.",
     "cannot go back", "Daniel Okafor", "explicit"),
    # a title or appositive before the name; a name with its job after it
    ("“The river has never been this low,” the governor, Laura Mitchell, wrote on Friday.",
     "never been this low", "Laura Mitchell", "apposition"),
    ("“Prices will fall by the summer,” said the chief economist of Barclays, Michael Saunders.",
     "Prices will fall", "Michael Saunders", "apposition"),
    ("“Our cars will be electric by 2030,” Mary Barra, chief executive of General Motors, told investors.",
     "cars will be electric", "Mary Barra", "explicit"),
    ("Google's head of research, Jeff Dean, added: “The model is only a first step.”",
     "only a first step", "Jeff Dean", "apposition"),
    # according to
    ("“The talks are close to a deal,” according to Antony Blinken, the US secretary of state.",
     "close to a deal", "Antony Blinken", "explicit"),
    ("According to Christine Lagarde, “inflation is coming down faster than we feared.”",
     "inflation is coming down", "Christine Lagarde", "explicit"),
    # pronouns: the subject of the sentence that names a person, not the last name
    ("Angela Merkel met Emmanuel Macron in Berlin. “We agreed on the budget,” she said.",
     "agreed on the budget", "Angela Merkel", "pronoun"),
    ("Boris Johnson praised Keir Starmer on Monday. “He has done the decent thing,” he said.",
     "done the decent thing", "Boris Johnson", "pronoun"),
    # two speakers in one sentence
    ("“The vote is lost,” Johnson said, but Starmer replied: “The vote has not even started.” "
     "Boris Johnson and Keir Starmer spoke in London.", "vote is lost", "Johnson", "explicit"),
    ("“The vote is lost,” Johnson said, but Starmer replied: “The vote has not even started.” "
     "Boris Johnson and Keir Starmer spoke in London.", "has not even started", "Starmer", "explicit"),
    # continuation: a second quoted sentence inherits the speaker
    ("“We will appeal the ruling,” said Laura Mitchell. “The court did not hear our evidence.”",
     "did not hear our evidence", "Laura Mitchell", "continuation"),
    ("Thomas Brennan insisted the plan was sound. “Every pound of it is accounted for.”",
     "Every pound of it", "Thomas Brennan", "continuation"),
    # a definite role takes the subject of the sentence before
    ("Sergei Shoigu left the meeting early. Asked about the strikes, the defence minister said: "
     "“Our answer will come at a time of our choosing.”", "Our answer will come", "Sergei Shoigu", "role"),
    ("Amelia Hartley rejected the claims on Tuesday. The spokeswoman told reporters: "
     "“There was never any agreement.”", "never any agreement", "Amelia Hartley", "role"),
    ("Rachel Reeves said the rules would change. Under the rules, councils must publish their budgets. "
     "“We are asking every council to show its books,” the chancellor said.", "show its books",
     "Rachel Reeves", "role"),
    ("Marta Vieira was the best player on the pitch. She missed an early chance. “I should have scored that "
     "one easily,” said the Brazil captain.", "should have scored", "Marta Vieira", "role"),
    # a pronoun subject is followed back; a possessive name in between is not the subject
    ("Film critic Mark Kermode was unimpressed. The problem with Kevin Costner's film, he believed, was its "
     "length. “It simply goes on for far too long,” he said.", "goes on for far too long", "Mark Kermode",
     "pronoun"),
    # a quote standing alone after a sentence whose subject is a person
    ("Winger Tom Harper was keen not to talk about the title. “We have a hard game in Cardiff next week.”",
     "hard game in Cardiff", "Tom Harper", "continuation"),
    # speech-act verbs whose subject is the source of the quoted words
    ("Amnesty International accused the government of “a cruel and deliberate policy” on Monday.",
     "cruel and deliberate", "Amnesty International", "explicit"),
    # an indefinite role stays an unnamed source, never credited to a nearby name
    ("Thomas Brennan was not available. A company spokesman said: “The factory will stay open.”",
     "factory will stay open", None, "unnamed"),
    ("“Nothing has been decided yet,” a spokeswoman for Amelia Hartley said.",
     "Nothing has been decided", None, "unnamed"),
    # partial quotes
    ("Laura Mitchell answered that “the reservoir is already half empty.”",
     "reservoir is already half empty", "Laura Mitchell", "explicit"),
    ("Daniel Okafor described the proposal as “a gamble with other people's savings.”",
     "gamble with other", "Daniel Okafor", "explicit"),
    # "it said": the organisation that is the subject of the sentence before; not a thing
    ("Turkcell said the ruling would hurt its plans. “If control cannot be achieved, the project will become "
     "risky,” it warned in a statement.", "project will become risky", "Turkcell", "pronoun"),
    ("Microsoft has recalled 14 million power cords. In a statement, it added: “In almost all instances, any "
     "damage was contained within the console.”", "damage was contained", "Microsoft", "pronoun"),
    ("The report was published by the treasury on Monday. “Growth will slow sharply next year,” it said.",
     "Growth will slow", None, ""),
    # a name after an honorific is a person even where NER misses it
    ("BP chief executive Lord Browne said the results were strong. “The profits are up more than the price "
     "of oil is up,” he said.", "profits are up", "Browne", "pronoun"),
    ("Mr Glazer's latest offer is said to be worth more. “We are confident of success,” Mr Glazer said.",
     "confident of success", "Glazer", "explicit"),
    # straight marks and a nested quote
    ('"She told me \'never again\' and walked out of the room," said Thomas Brennan.',
     "told me", "Thomas Brennan", "explicit"),
    ('Amelia Hartley promised: "Every school will get a new roof by next year."',
     "new roof", "Amelia Hartley", "explicit"),
]


@pytest.fixture(scope="module")
def own_cases(seed_linker: Linker) -> list[tuple[str, list[Link], list[Quote]]]:
    return _link_docs(seed_linker, [c[0] for c in CASES])


@pytest.mark.parametrize("n", range(len(CASES)), ids=[f"{c[3]}-{c[1][:18]}" for c in CASES])
def test_own_cases(own_cases, n: int) -> None:
    text, inside, surface, how = CASES[n]
    doc_text, links, quotes = own_cases[n]
    q = _quote_with(doc_text, quotes, inside)
    want = _entity_at(doc_text, links, surface) if surface else None
    assert surface is None or want is not None, f"{surface!r} is not linked: {links}"
    assert (q.speaker, q.how) == (want, how), q
    assert q.cue or how == "continuation" or not how


def test_unnamed_source_keeps_descriptor(own_cases) -> None:
    n = next(i for i, c in enumerate(CASES) if c[1] == "factory will stay open")
    text, _, quotes = own_cases[n]
    q = _quote_with(text, quotes, "factory will stay open")
    assert q.speaker is None and q.descriptor == "company spokesman" and q.cue == "said"


# ------------------------------------------------------------------ spans without a speaker
def test_unattributed_quotes_are_kept_and_short_ones_skipped() -> None:
    text = "The so-called “peace plan” was discussed. “Nobody knows what happens next in this war.”"
    quotes = extract_quotes(text, [])
    assert [(q.text, q.speaker, q.how, q.descriptor) for q in quotes] == [
        ("Nobody knows what happens next in this war.", None, "", "")
    ]
    assert len(find_quotes(text)) == 2


def test_quote_running_across_paragraphs_is_segments_of_one_quote() -> None:
    text = (
        "The minister, Laura Mitchell, said: “We will build the homes this country needs.\n\n"
        "“We will do it without touching the green belt, and we will do it on time.”\n\n"
        "The opposition was not convinced."
    )
    links = [Link(text.index("Laura"), text.index("Laura") + 13, "Laura Mitchell", "lm", "person")]
    quotes = extract_quotes(text, links)
    assert [q.text for q in quotes] == [
        "We will build the homes this country needs.",
        "We will do it without touching the green belt, and we will do it on time.",
    ]
    assert len({q.quote_id for q in quotes}) == 1 and {q.speaker for q in quotes} == {"lm"}
    assert count_quotes(quotes).found == 1


def test_reopened_straight_mark_in_one_paragraph() -> None:
    """Text whose paragraph breaks were lost: the reopened mark continues the quote instead of pairing up
    the wrong marks."""
    text = ('Ms Hewitt said: "We have already doubled maternity pay. "We are going to extend it to nine '
            'months." She said more was to come. "It is a firm commitment."')
    spans = find_spans(text)
    assert [[text[s:e] for s, e in q.segments] for q in spans] == [
        ["We have already doubled maternity pay.", "We are going to extend it to nine months."],
        ["It is a firm commitment."],
    ]


def test_mark_with_spaces_on_both_sides_closes_an_open_quote() -> None:
    text = 'It continued: "We are very sorry, we have tried everything. " The site closed on Monday.'
    assert [text[s:e] for s, e in find_quotes(text)] == ["We are very sorry, we have tried everything."]


def test_straight_mark_direction_from_neighbours() -> None:
    text = 'He said "the 5" screen" was too small, "and it broke twice in one week," she said.'
    assert [text[s:e] for s, e in find_quotes(text)][-1] == "and it broke twice in one week"


# ------------------------------------------------------------------ through the build
def test_build_stores_segments_counts_and_said(tmp_path: Path) -> None:
    from index import layout
    from index.build import build_index
    from index.encoder import load_encoder
    from tests.conftest import hash_settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(
        "Housing plan\n\n"
        "Laura Mitchell presented the plan in Leeds on Monday. She said: “We will build the homes this "
        "country needs.\n\n“We will do it without touching the green belt.”\n\n"
        "A council spokesman said: “The sites have not been chosen yet.”\n\n"
        "The so-called “new towns programme for the north” was not discussed.\n",
        encoding="utf-8",
    )
    report = build_index(hash_settings(corpus, tmp_path / "idx"), encoder=load_encoder("hash"))
    counts = (report.quotes, report.quotes_named, report.quotes_unnamed, report.quotes_unattributed)
    assert counts == (3, 1, 1, 1)
    assert "3 found: 1 attributed to a named entity, 1 to an unnamed source, 1 unattributed" in (
        report.summary()
    )
    build = layout.current_build(tmp_path / "idx")
    rows = read_paragraphs(build)
    quotes = [(r["text"], q) for r in rows for q in r["quotes"]]
    for ptext, q in quotes:
        assert ptext[q["start"] : q["end"]] == q["text"]
    homes = [q for _, q in quotes if "homes" in q["text"] or "green belt" in q["text"]]
    assert len(homes) == 2 and len({q["quote_id"] for q in homes}) == 1
    assert {q["speaker"] for q in homes} == {"local:laura-mitchell"} and homes[0]["how"] == "pronoun"
    unnamed = next(q for _, q in quotes if "sites" in q["text"])
    assert unnamed["speaker"] is None and unnamed["descriptor"] == "council spokesman"
