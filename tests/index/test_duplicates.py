"""Near-duplicate clusters (MinHash LSH, confirmed by exact Jaccard)."""

from __future__ import annotations

from index.duplicates import find_clusters

STORY = ("The central bank held interest rates at four per cent on Thursday, saying inflation was falling "
         "more slowly than expected and that wage growth remained strong across most of the economy. "
         "Markets had priced in a cut, and the pound rose against the dollar after the announcement. The "
         "governor said the committee would look again at the figures next month before any decision.")
OTHER = ("The national football team reached the final after a late penalty in a match watched by a record "
         "crowd, and the coach said the young side had surprised everyone this season.")


def test_copies_cluster_and_different_stories_do_not() -> None:
    docs = [("a", STORY), ("b", STORY + " Additional reporting by the agency."), ("c", OTHER),
            ("d", STORY.replace("Thursday", "Friday")), ("e", "Short item."), ("f", "Short item.")]
    assert find_clusters(docs) == [["a", "b", "d"]]  # texts under 8 shingles are never called copies


def test_same_topic_is_not_a_duplicate() -> None:
    rewrite = ("Interest rates stay at four per cent: the bank's committee voted to hold on Thursday as "
               "price rises slowed less than forecast, while pay kept climbing in most sectors.")
    assert find_clusters([("a", STORY), ("b", rewrite)]) == []
