"""A generated news archive for paging, date, exclusion and duplicate tests: thousands of small dated
articles, built in seconds (hash encoder, gazetteer-only linker over the seed registry).

Every article is made from a seeded ``random.Random``, so a test can recompute what should match. Dates
are written the ways sources write them (ISO, "Feb 17, 2025", "17 February 2025", an ISO timestamp) and
some articles have none; some articles are wire copies of an earlier one with a line changed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

TOPICS = {
    "talks": ("peace talks", "ceasefire", "negotiators", "delegation", "summit", "agreement"),
    "energy": ("gas prices", "pipeline", "oil exports", "power grid", "winter supply", "tariffs"),
    "sport": ("football final", "coach", "stadium", "league title", "transfer", "penalty"),
    "weather": ("storm", "flooding", "heatwave", "rainfall", "forecast", "drought"),
}
PLACES = ("Ukraine", "Russia", "Paris", "Riyadh", "Moscow", "California", "Europe")
PEOPLE = ("Sergei Lavrov", "Marco Rubio", "Keir Starmer", "Volodymyr Zelenskyy", "Steve Witkoff")
FIRST_DAY = date(2023, 1, 1)
DAYS = 3 * 365


@dataclass
class Article:
    id: str
    title: str
    paragraphs: list[str]
    day: date | None
    topic: str
    places: set[str] = field(default_factory=set)
    copy_of: str | None = None

    def row(self, style: int) -> dict[str, str]:
        row = {"id": self.id, "title": self.title, "text": "\n\n".join(self.paragraphs)}
        if self.day is not None:
            row["date"] = _written(self.day, style)
        return row


def _written(day: date, style: int) -> str:
    """The same day as different sources write it."""
    return [day.isoformat(), day.strftime("%b %d, %Y"), day.strftime("%d %B %Y"),
            f"{day.isoformat()}T09:30:00Z"][style % 4]


FORMULA_ID = "a-formula"  # an article whose title and text start with spreadsheet formula characters


def formula_article() -> Article:
    return Article(FORMULA_ID, "=HYPERLINK(\"http://x\") storm warning",
                   ["+44 storm hotline for Paris callers, the agency said.",
                    "@agency -2 degrees and storm clouds over Paris tonight."],
                   date(2024, 6, 1), "weather", {"Paris"})


def generate(n: int, *, seed: int = 15, undated_every: int = 20, copy_every: int = 25) -> list[Article]:
    """``n`` articles (plus ``formula_article``); every ``undated_every``-th has no date, every
    ``copy_every``-th is a wire copy of an earlier one (``copy_of``)."""
    rng = random.Random(seed)
    out: list[Article] = [formula_article()]
    for i in range(n):
        if copy_every and i % copy_every == copy_every - 1 and out:
            src = out[rng.randrange(len(out))]
            paras = list(src.paragraphs)
            paras[-1] = paras[-1] + " Additional reporting by the agency desk."
            out.append(Article(f"a{i:05d}", src.title, paras, src.day, src.topic, set(src.places), src.id))
            continue
        topic = rng.choice(sorted(TOPICS))
        words = TOPICS[topic]
        places = set(rng.sample(PLACES, 2))
        person = rng.choice(PEOPLE)
        a, b = sorted(places)
        title = f"{words[rng.randrange(6)].capitalize()} news from {a} #{i}"
        paras = [
            f"Officials in {a} discussed {words[rng.randrange(6)]} and {words[rng.randrange(6)]} "
            f"on story {i}.",
            f"{person} said the {words[rng.randrange(6)]} in {b} would shape the coming weeks, case {i * 7}.",
            f"Analysts expect more on the {words[rng.randrange(6)]} before the end of the month, "
            f"note {i * 13}.",
        ]
        day = None if undated_every and i % undated_every == 0 else FIRST_DAY + timedelta(rng.randrange(DAYS))
        out.append(Article(f"a{i:05d}", title, paras, day, topic, places))
    return out


def write_jsonl(articles: list[Article], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i, art in enumerate(articles):
            f.write(json.dumps(art.row(i), ensure_ascii=False) + "\n")
    return path


def build(articles: list[Article], root: Path):
    """Build an index over ``articles`` under ``root``; returns its Settings (hash encoder, gazetteer)."""
    from index.build import build_index
    from index.linking.detect import Detector
    from index.linking.registry import Registry
    from index.linking.resolve import Linker
    from tests.conftest import SEEDS, hash_settings

    corpus = write_jsonl(articles, root / "corpus" / "news.jsonl")
    settings = hash_settings(corpus.parent, root / "index")
    registry = Registry.load(SEEDS / "entities.jsonl")
    linker = Linker(registry, Detector(registry, use_ner=False))
    build_index(settings, linker=linker)
    return settings
