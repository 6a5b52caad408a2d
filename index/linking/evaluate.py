"""Evaluate mention detection and entity clustering against ELEVANT-style gold (jsonl).

* Mentions: precision/recall/F1 with exact spans, and with any-overlap (one-to-one, greedy by overlap).
* Clustering: B³ over gold mentions matched (any-overlap) to a prediction. Gold clusters are the Wikidata
  ids (global across documents); a ``<NIL>`` mention (an entity the knowledge base lacks) belongs to the
  cluster of its (document, normalised surface) — the same unknown name twice in one article is one
  person, so joining them is right; ``<NO_MAPPING>`` mentions count for detection but are left out of B³
  (their identity is unknown). Predicted clusters are the linker's entity ids, also global, so the corpus
  pass's cross-document clustering of ``local:`` ids is measured.
* ``surname``: the same B³ averaged over gold mentions that are a single token of a person
  (type Q5 human or Q215627 person).
* ``short_forms``: of the one-word gold mentions whose entity was named in full (two words or more)
  earlier in the same document, the share whose predicted id equals the full name's predicted id.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from index.errors import PersonaeError
from index.linking.names import normalize_name
from index.records import Document

NIL, NO_MAPPING = "<NIL>", "<NO_MAPPING>"
PERSON_TYPES = {"Q5", "Q215627"}  # human, person (ELEVANT type ids)


def _prf(tp: float, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def _read_gold(path: str | Path, limit: int | None) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        raise PersonaeError(f"{p}: gold file not found")
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["text"], row["labels"]  # noqa: B018 - presence check
        except (json.JSONDecodeError, KeyError, TypeError):
            raise PersonaeError(f"{p}:{n}: not an ELEVANT jsonl line (needs 'text' and 'labels')") from None
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    return rows


def _b3(pairs: list[tuple[str, str]], subset: list[int] | None = None) -> dict[str, float]:
    """B³ over ``(gold cluster, predicted cluster)`` per mention, averaged over ``subset`` (default all)."""
    by_gold: dict[str, set[int]] = defaultdict(set)
    by_pred: dict[str, set[int]] = defaultdict(set)
    for i, (g, pr) in enumerate(pairs):
        by_gold[g].add(i)
        by_pred[pr].add(i)
    idx = range(len(pairs)) if subset is None else subset
    ps, rs = [], []
    for i in idx:
        g, pr = pairs[i]
        inter = len(by_gold[g] & by_pred[pr])
        ps.append(inter / len(by_pred[pr]))
        rs.append(inter / len(by_gold[g]))
    p = sum(ps) / len(ps) if ps else 0.0
    r = sum(rs) / len(rs) if rs else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "n": len(ps)}


def _match_overlap(gold: list[tuple[int, int]], pred: list[tuple[int, int]]) -> dict[int, int]:
    """Greedy one-to-one matching by overlap length: gold index → predicted index."""
    cands = []
    for gi, (gs, ge) in enumerate(gold):
        for pi, (ps, pe) in enumerate(pred):
            ov = min(ge, pe) - max(gs, ps)
            if ov > 0:
                cands.append((-ov, gi, pi))
    out: dict[int, int] = {}
    used: set[int] = set()
    for _, gi, pi in sorted(cands):
        if gi not in out and pi not in used:
            out[gi] = pi
            used.add(pi)
    return out


def evaluate_links(gold_path: str | Path, linker: Any, limit: int | None = None) -> dict[str, Any]:
    """Run ``linker.link_documents`` over the gold texts and score mentions and clustering."""
    rows = _read_gold(gold_path, limit)
    docs = [Document(id=str(r.get("id", i)), title="", text=r["text"]) for i, r in enumerate(rows)]
    results = linker.link_documents(docs)
    n_gold = n_pred = tp_exact = tp_overlap = 0
    pairs: list[tuple[str, str]] = []
    surname_idx: list[int] = []
    short_hits = short_n = 0
    for row, doc, (links, _quotes) in zip(rows, docs, results, strict=True):
        doc_pairs: list[tuple[int, str, str, str]] = []
        es, ee = row.get("evaluation_span") or (0, len(row["text"]))
        labels = [lb for lb in row["labels"] if es <= lb["span"][0] and lb["span"][1] <= ee]
        preds = [lk for lk in links if es <= lk.start and lk.end <= ee]
        gold_spans = [tuple(lb["span"]) for lb in labels]
        pred_spans = [(lk.start, lk.end) for lk in preds]
        n_gold += len(gold_spans)
        n_pred += len(pred_spans)
        tp_exact += len(set(gold_spans) & set(pred_spans))
        match = _match_overlap(gold_spans, pred_spans)  # type: ignore[arg-type]
        tp_overlap += len(match)
        for gi, pi in match.items():
            lb = labels[gi]
            gid = lb["entity_id"]
            if gid == NO_MAPPING:
                continue
            surface = row["text"][lb["span"][0] : lb["span"][1]]
            if gid == NIL:
                gid = f"NIL:{doc.id}:{normalize_name(surface)}"
            if len(surface.split()) == 1 and PERSON_TYPES & set(str(lb.get("type", "")).split("|")):
                surname_idx.append(len(pairs))
            pairs.append((gid, preds[pi].entity_id))
            doc_pairs.append((lb["span"][0], surface, gid, preds[pi].entity_id))
        short_hits, short_n = _short_forms(doc_pairs, short_hits, short_n)
    return {
        "gold": str(gold_path),
        "documents": len(docs),
        "gold_mentions": n_gold,
        "predicted_mentions": n_pred,
        "mentions_exact": _prf(tp_exact, n_pred, n_gold),
        "mentions_overlap": _prf(tp_overlap, n_pred, n_gold),
        "b3": _b3(pairs),
        "b3_surname": _b3(pairs, surname_idx),
        "short_forms": {"rate": short_hits / short_n if short_n else 0.0, "n": short_n},
    }


def _short_forms(
    doc_pairs: list[tuple[int, str, str, str]], hits: int, n: int
) -> tuple[int, int]:
    """Count one-word mentions after a full name of the same gold entity, and those given its id."""
    full: dict[str, str] = {}  # gold id → predicted id of its latest full-name mention
    for _, surface, gid, pred in sorted(doc_pairs):
        words = surface.split()
        if len(words) >= 2:
            full[gid] = pred
        elif len(words) == 1 and gid in full:
            n += 1
            hits += pred == full[gid]
    return hits, n


def format_report(result: dict[str, Any]) -> str:
    """A small fixed-width table of :func:`evaluate_links` output."""
    lines = [
        f"{result['gold']}: {result['documents']} documents, {result['gold_mentions']} gold / "
        f"{result['predicted_mentions']} predicted mentions",
        f"{'metric':<22}{'precision':>10}{'recall':>10}{'f1':>10}{'n':>7}",
    ]
    for key, label in (
        ("mentions_exact", "mentions (exact)"),
        ("mentions_overlap", "mentions (overlap)"),
        ("b3", "B3 clustering"),
        ("b3_surname", "B3 surname-only"),
    ):
        m = result[key]
        n = str(m.get("n", "")) if "n" in m else ""
        lines.append(f"{label:<22}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>10.3f}{n:>7}")
    sf = result.get("short_forms")
    if sf is not None:
        lines.append(f"{'one-word short forms':<22}{'':>10}{'':>10}{sf['rate']:>10.3f}{sf['n']:>7}")
    return "\n".join(lines)


# ---------------------------------------------------------------- link health (no gold needed)
_SCORE_TAIL_RE = re.compile(r"\d+\s*[-–:]\s*\d+$")


def link_health(
    links_by_doc: dict[str, list[dict[str, Any]]], entities: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Counts of what a reader would call a broken link, over a linked corpus (``{doc id: [link dicts]}``,
    document offsets or paragraph offsets alike) and its entity table: links on a function word; local
    entities whose name starts (other than "The") or ends with a function word, or ends in a score; links
    of a name without digits to a numbered entity not named in full in the same document. Plus the
    entities per type. Shown in the build summary."""
    from index.linking.detect import EDGE_WORDS

    def function_word(w: str) -> bool:
        return w.casefold() in EDGE_WORDS and not w.isupper()

    on_function_word = numbered = 0
    for links in links_by_doc.values():
        named = {lk["text"] for lk in links}
        for lk in links:
            if function_word(lk["text"]):
                on_function_word += 1
            name = str(entities.get(lk["entity_id"], {}).get("name", ""))
            digitless = not any(c.isdigit() for c in lk["text"])
            if digitless and any(c.isdigit() for c in name) and name not in named:
                numbered += 1
    bad_edges = scores = 0
    per_type: Counter[str] = Counter()
    for eid, ent in entities.items():
        per_type[ent.get("type", "other")] += 1
        if not eid.startswith("local:"):
            continue
        words = str(ent.get("name", "")).split()
        if words and ((function_word(words[0]) and words[0] != "The") or function_word(words[-1])):
            bad_edges += 1
        if _SCORE_TAIL_RE.search(str(ent.get("name", ""))):
            scores += 1
    return {"links_on_function_words": on_function_word, "locals_with_function_word_edges": bad_edges,
            "locals_with_scores": scores, "numbered_without_full_name": numbered,
            "entities_per_type": dict(sorted(per_type.items()))}
