"""Entity linking, the heart of Personae: every way a text names a person, organisation or place → one id.

The stages, one module each, in the order a build runs them:

* :mod:`~index.linking.names`     — tokens and normalised name keys shared by every stage
* :mod:`~index.linking.registry`  — canonical entities (aliases, dated titles) and curation decisions
* :mod:`~index.linking.detect`    — mentions: spaCy NER + registry gazetteer + per-document rescan
* :mod:`~index.linking.resolve`   — mentions → candidate entities, scored in document context
* :mod:`~index.linking.quotes`    — direct quotes and their speakers
* :mod:`~index.linking.evaluate`  — mention P/R/F1 and B³ clustering against gold sets

Beside the build: :mod:`~index.linking.kb` imports knowledge bases (Wikidata dumps, FollowTheMoney streams)
into the registry, and :mod:`~index.linking.judgements` exchanges curation decisions as nomenklatura
judgements.

The linker is also used read-only at query time (names in a query → entity ids).
"""
