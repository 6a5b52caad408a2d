"""Settings: defaults, ``PERSONAE_*`` overrides, and one clear error for a bad value."""

from __future__ import annotations

import pytest

from index.errors import PersonaeError
from index.settings import Settings


def test_env_overrides_and_coercion() -> None:
    env = {"PERSONAE_NER_WINDOW": "0", "PERSONAE_EMBED_TITLE": "off", "PERSONAE_BM25_B": "0.5"}
    s = Settings.load(env=env)
    assert (s.ner_window, s.embed_title, s.bm25_b) == (0, False, 0.5)
    assert Settings.load(env={}).ner_window == 4
    assert Settings.load(env={"PERSONAE_NER_WINDOW": "0"}, ner_window=6).ner_window == 6  # flags beat env


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PERSONAE_NER_WINDOW": "-1"}, "ner_window=-1: must be >= 0"),
        ({"PERSONAE_NER_WINDOW": "four"}, "ner_window='four': expected int"),
        ({"PERSONAE_RAY_WORKERS": "-2"}, "ray_workers=-2: must be >= 0"),
        ({"PERSONAE_BATCH_SIZE": "0"}, "batch_size=0: must be >= 1"),
        ({"PERSONAE_FUSION": "max"}, "fusion='max'"),
        ({"PERSONAE_KEYWORD_WEIGHT": "1.5"}, "keyword_weight=1.5"),
    ],
)
def test_bad_values_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(PersonaeError) as err:
        Settings.load(env=env)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_override_is_refused() -> None:
    with pytest.raises(PersonaeError, match="unknown setting 'ner_windows'"):
        Settings.load(env={}, ner_windows=3)
