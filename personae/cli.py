"""The one front door: ``personae build | verify | search | serve | entities | eval | eval-links``.

Each subcommand parses flags into ``Settings`` and calls one library function. ``PersonaeError`` becomes a
one-line ``click`` error (exit 1), never a traceback; so does an ``OSError`` (disk full, no permission, a
path that is a file): the line names the path and the cause.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

import click

from index.errors import PersonaeError, StorageError
from index.settings import Settings


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings.load(**overrides)
    except PersonaeError as err:
        raise click.ClickException(str(err)) from None


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn core errors into one-line CLI errors."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PersonaeError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:
            raise click.ClickException(str(StorageError.from_os_error(err))) from None

    return wrapper


def _print_settings(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for name, default, help_text in Settings.help_table():
        click.echo(f"{name:20} {default!s:28} PERSONAE_{name.upper()}\n{'':20} {help_text}")
    ctx.exit()


@click.group()
@click.version_option(package_name="personae")
@click.option(
    "--help-settings",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_settings,
    help="Show every setting, its default and its environment variable.",
)
def cli() -> None:
    """Personae: entity-linked search for news and document collections."""


index_dir_option = click.option(
    "--index-dir", type=click.Path(file_okay=False), help="Index folder [var/index]."
)


@cli.command()
@click.option("--corpus", type=click.Path(), help="Folder, or one file (.jsonl, .csv, .pdf...) [seeds].")
@index_dir_option
@click.option("--entities-file", type=click.Path(), help="Entity registry [the corpus's entities.jsonl].")
@click.option("--model", help="Sentence-transformers model name or path.")
@click.option(
    "--ray-workers", type=int, default=None, help="Encode on Ray with N actors (RAY_ADDRESS for a cluster)."
)
@click.option("--text-column", help="JSONL/CSV column with the text [text].")
@click.option("--title-column", help="JSONL/CSV column with the title, optional [title].")
@click.option("--date-column", help="JSONL/CSV column with the date, optional [date].")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option(
    "--full",
    is_flag=True,
    help="Recompute everything instead of reusing unchanged documents' NER output and vectors.",
)
@friendly
def build(
    corpus: str | None,
    index_dir: str | None,
    entities_file: str | None,
    model: str | None,
    ray_workers: int | None,
    text_column: str | None,
    title_column: str | None,
    date_column: str | None,
    quiet: bool,
    full: bool,
) -> None:
    """Read the corpus, link entities, and build the keyword and vector indexes.

    Incremental by default: documents unchanged since the current build reuse its NER output and vectors;
    the new build is still complete and equal to a full rebuild.
    """
    from index.build import build_index

    settings = _settings(
        corpus=corpus, index_dir=index_dir, entities_file=entities_file, model=model, ray_workers=ray_workers,
        text_column=text_column, title_column=title_column, date_column=date_column,
    )
    say = None if quiet else (lambda m: click.echo(m, err=True))
    try:
        report = build_index(settings, progress=not quiet, log=say, incremental=not full)
    except (OSError, StorageError) as err:
        problem = err if isinstance(err, StorageError) else StorageError.from_os_error(err)
        raise click.ClickException(
            f"build failed, the current build, if any, still serves: {problem}"
        ) from None
    click.echo(report.summary())


@cli.command()
@index_dir_option
@click.option("--quick", is_flag=True, help="Only check that files exist with their recorded sizes.")
def verify(index_dir: str | None, quick: bool) -> None:
    """Check the current build: files, sizes, sha256 checksums and row counts.

    Exit status: 0 the index is whole; 1 it is damaged or of another format (rebuild it); 2 there is none.
    """
    from pathlib import Path

    from index import layout
    from index.errors import IndexMissing

    settings = _settings(index_dir=index_dir)
    try:
        folder = layout.current_build(Path(settings.index_dir))
        manifest = layout.verify(folder, deep=not quick)
    except IndexMissing as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    except PersonaeError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(1)
    counts = ", ".join(f"{v} {k}" for k, v in manifest.counts.items())
    click.echo(f"ok: {folder} ({'sizes' if quick else 'sizes, checksums and counts'} checked; {counts})")


@cli.command()
@click.argument("query")
@index_dir_option
@click.option("--limit", "-n", default=10, show_default=True, type=int)
@click.option("--offset", default=0, show_default=True, type=int)
@click.option(
    "--mode", type=click.Choice(["hybrid", "keyword", "vector"]), default="hybrid", show_default=True
)
@click.option("--fusion", type=click.Choice(["rrf", "weighted"]), default=None)
@click.option("--entity", "-e", multiple=True, help="Only paragraphs linked to this entity id (repeatable).")
@click.option("--group", is_flag=True, help="Group paragraphs by document.")
@click.option("--from", "date_from", default=None, help="Only documents dated on or after (YYYY[-MM[-DD]]).")
@click.option("--to", "date_to", default=None, help="Only documents dated on or before (YYYY[-MM[-DD]]).")
@click.option("--sort", type=click.Choice(["relevance", "date"]), default="relevance", show_default=True,
              help="date: newest first, undated documents last.")
@click.option("--duplicates", type=click.Choice(["collapse", "show"]), default="collapse", show_default=True,
              help="Fold near-duplicate documents into one result (grouped results).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON result (the API's shape).")
@friendly
def search(
    query: str,
    index_dir: str | None,
    limit: int,
    offset: int,
    mode: str,
    fusion: str | None,
    entity: tuple[str, ...],
    group: bool,
    date_from: str | None,
    date_to: str | None,
    sort: str,
    duplicates: str,
    as_json: bool,
) -> None:
    """Search the index. QUERY may exclude: -word, NOT "a phrase", -entity:ID, NOT said:ID."""
    from search.searcher import Searcher

    searcher = Searcher.open(_settings(index_dir=index_dir))
    result = searcher.search(
        query, limit=limit, offset=offset, mode=mode, fusion=fusion, entities=entity, group=group,
        date_from=date_from, date_to=date_to, sort=sort, duplicates=duplicates,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    linked = ", ".join(f"{e['text']} → {e['name']} ({e['id']})" for e in result["linked"])
    click.echo(f"{result['total']} results ({result['took_ms']} ms){'; linked: ' + linked if linked else ''}")
    hits = result["hits"] or [h for g in result["groups"] for h in g["hits"][:1]]
    for i, h in enumerate(hits, start=offset + 1):
        text = " ".join(h["text"].split())
        page = f"  p. {h['page']}" if h.get("page") else ""
        click.echo(f"\n{i:>3}. {h['title']}  [{h['paragraph_id']}]{page}  score {h['score']:.4f}")
        click.echo(f"     {text[:300]}{'…' if len(text) > 300 else ''}")


@cli.command()
@click.option("--host", default=None, help="Interface to bind [127.0.0.1].")
@click.option("--port", default=None, type=int, help="Port [5000].")
@index_dir_option
@click.option("--threads", default=8, show_default=True, help="Waitress worker threads.")
@click.option(
    "--connection-limit",
    default=1000,
    show_default=True,
    help="Open connections waitress accepts (its default of 100 starves keep-alive clients beyond it).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    help="Processes. 1: waitress in this process; more: gunicorn (POSIX) with that many worker processes, "
    "each with --threads threads. Searching is CPU- and GIL-bound, so use one worker per core.",
)
@click.option("--dev", is_flag=True, help="Flask's development server with reloader instead of waitress.")
@click.option(
    "--get", "get_path", default=None, help="Run one GET request in-process, print it, exit (smoke test)."
)
@friendly
def serve(
    host: str | None,
    port: int | None,
    index_dir: str | None,
    threads: int,
    connection_limit: int,
    workers: int,
    dev: bool,
    get_path: str | None,
) -> None:
    """Serve the web app and JSON API (waitress, or gunicorn with --workers > 1)."""
    from web import create_app

    settings = _settings(host=host, port=port, index_dir=index_dir)
    if workers > 1 and settings.backend == "milvus":
        from search.backends.milvus import is_local

        if is_local(settings.milvus_uri):
            raise click.UsageError(
                f"--workers {workers} with the milvus-lite file {settings.milvus_uri}: milvus-lite opens a "
                "file from one process only; use --workers 1 (threads still serve requests concurrently) or "
                "a Milvus server"
            )
    _check_readable(settings)
    if workers > 1 and not (dev or get_path):
        click.echo(f"Personae on http://{settings.host}:{settings.port}/ ({workers} workers)", err=True)
        _serve_gunicorn(settings, workers=workers, threads=threads, connections=connection_limit)
        return
    app = create_app(settings, warm=not (dev or get_path))
    if get_path:
        resp = app.test_client().get(get_path)
        click.echo(resp.get_data(as_text=True))
        sys.exit(0 if resp.status_code == 200 else 1)
    if dev:
        click.echo(f"Personae on http://{settings.host}:{settings.port}/", err=True)
        app.run(host=settings.host, port=settings.port, debug=True)
        return
    import logging

    import waitress

    logging.basicConfig()  # as waitress.serve does: its warnings (and the app's) reach stderr
    with _listening(settings):  # binds here: the banner below means the port is ours
        server = waitress.create_server(
            app,
            host=settings.host,
            port=settings.port,
            threads=threads,
            ident="personae",
            connection_limit=connection_limit,
            asyncore_use_poll=True,
        )
    click.echo(f"Personae on http://{settings.host}:{settings.port}/", err=True)
    server.run()


def _check_readable(settings: Settings) -> None:
    """Before serving: the live build's files can be opened (an OSError ends start-up with one line).

    No index yet is fine (the app answers 503 until a build appears); a damaged one is the app's to report.
    With backend=milvus nothing local is read: the engine holds the build.
    """
    if settings.backend == "milvus":
        return
    from pathlib import Path

    from index import layout
    from index.errors import IndexFormatMismatch, IndexMissing

    try:
        folder = layout.current_build(Path(settings.index_dir))
        manifest = layout.read_manifest(folder)
    except (IndexMissing, IndexFormatMismatch):
        return
    for rel in manifest.files:
        path = folder / rel
        if path.is_file():  # a missing part is damage, which the app reports (503) like other damage
            with path.open("rb"):
                pass


@contextmanager
def _listening(settings: Settings) -> Iterator[None]:
    """An OSError from binding the socket (port in use, no permission) names the address it was for."""
    try:
        yield
    except OSError as err:
        if err.filename is not None:
            raise
        address = f"{settings.host}:{settings.port}"
        raise StorageError(address, err.strerror or str(err), "listen on") from None


def _serve_gunicorn(settings: Settings, *, workers: int, threads: int, connections: int) -> None:
    """gunicorn's gthread workers, each a process with its own Searcher, opened and warmed after the fork.

    Not ``preload_app``: torch and faiss keep OpenMP thread pools, which are not safe to fork once used;
    the master only imports the libraries (``_import_libraries``).
    What forking would share is shared anyway: the vectors are memory-mapped (``index/vectors.py``) and
    records are read from the build's store (``index/store.py``), both through the page cache."""
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        raise click.ClickException(
            "--workers > 1 needs gunicorn (POSIX only): pip install gunicorn"
        ) from None

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            opts = {
                "bind": f"{settings.host}:{settings.port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "worker_connections": connections,
                "timeout": 120,
                "accesslog": None,
            }
            for key, value in opts.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from web import create_app

            return create_app(settings, warm=True)  # in each worker, before it accepts connections

    _import_libraries()
    _prepare_query_graph(settings)
    _App().run()


def _prepare_query_graph(settings: Settings) -> None:
    """Export the query encoder's ONNX graph into its cache in a child process when no graph is cached yet
    (the first start on a machine): otherwise every worker would export it itself and keep the model and
    the export's memory for as long as it runs. A failure here only means the workers export it."""
    from index.encoder import query_graph_missing

    if not query_graph_missing(settings.model):
        return
    code = "import sys; from index.encoder import load_encoder; load_encoder(sys.argv[1]).encode(['warm'])"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run([sys.executable, "-c", code, settings.model], check=False, timeout=600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _import_libraries() -> None:
    """Import, in the gunicorn master, the libraries every worker searches with: each worker then starts
    without importing them again, and their code pages, and what importing them allocates, are shared
    through the fork. Imports only: no model is loaded and nothing runs (see ``_serve_gunicorn``). spaCy
    is one (query linking runs NER on an unknown capitalised name; it imports torch through thinc);
    sentence-transformers and transformers are not: a query is encoded by ONNX Runtime from the cached
    graph with the tokenizers library."""
    import importlib

    for name in ("onnxruntime", "tokenizers", "spacy", "faiss", "whoosh.index", "search.searcher", "web"):
        try:
            importlib.import_module(name)
        except ImportError:  # the worker reports what is missing, as without this step
            pass


@cli.command("eval")
@click.option(
    "--corpus",
    required=True,
    type=click.Path(exists=True),
    help="BEIR corpus: corpus.jsonl, SciFact-style CSV, or a folder holding one.",
)
@click.option(
    "--queries", required=True, type=click.Path(exists=True, dir_okay=False), help="BEIR queries.jsonl."
)
@click.option("--qrels", required=True, type=click.Path(exists=True, dir_okay=False), help="BEIR qrels .tsv.")
@click.option("--index-dir", type=click.Path(file_okay=False), default="var/eval-index", show_default=True)
@click.option("--rebuild", is_flag=True, help="Rebuild even if an index for this corpus exists.")
@click.option("--max-queries", type=int, default=None, help="Evaluate only the first N judged queries.")
@click.option(
    "--link-query", is_flag=True, help="Link query names to entities (adds the entity leg to hybrid)."
)
@friendly
def eval_cmd(
    corpus: str,
    queries: str,
    qrels: str,
    index_dir: str,
    rebuild: bool,
    max_queries: int | None,
    link_query: bool,
) -> None:
    """nDCG@10, recall@100 and MRR@10 for keyword, vector and hybrid, side by side."""
    from pathlib import Path

    from index import layout
    from index.build import build_index
    from index.errors import IndexMissing
    from search.evaluate import format_table, load_beir_corpus, load_qrels, load_queries
    from search.runs import evaluate_runs, make_runs, write_corpus_jsonl
    from search.searcher import Searcher

    settings = _settings(index_dir=index_dir, corpus=str(Path(index_dir) / "corpus.jsonl"))
    try:
        manifest = layout.read_manifest(layout.current_build(Path(index_dir)))
        reuse = not rebuild and manifest.settings.get("eval_source") == str(Path(corpus).resolve())
    except IndexMissing:
        reuse = False
    if not reuse:
        docs = load_beir_corpus(corpus)
        write_corpus_jsonl(docs, Path(settings.corpus))
        click.echo(f"building an index of {len(docs)} documents in {index_dir}", err=True)
        report = build_index(
            settings, progress=True, extra_settings={"eval_source": str(Path(corpus).resolve())}
        )
        click.echo(report.summary(), err=True)
    searcher = Searcher.open(settings)
    judged = load_qrels(qrels)
    all_queries = load_queries(queries)
    qs = {qid: all_queries[qid] for qid in judged if qid in all_queries}
    if max_queries:
        qs = dict(list(qs.items())[:max_queries])
    judged = {qid: judged[qid] for qid in qs}
    runs, latency = make_runs(searcher, qs, link_query=link_query)
    table = evaluate_runs(judged, runs)
    for label, times in latency.items():
        times = sorted(times)
        if times:
            table[label]["p50 ms"] = times[len(times) // 2]
            table[label]["p95 ms"] = times[min(len(times) - 1, int(len(times) * 0.95))]
    click.echo(f"{len(qs)} queries, {searcher.stats()['counts']['paragraphs']} paragraphs")
    click.echo(format_table(table))


@cli.group()
def entities() -> None:
    """Inspect and curate entities. Decisions are written to the registry; the next build applies them."""


entities_file_option = click.option(
    "--entities-file", type=click.Path(dir_okay=False), help="Entity registry [the corpus's entities.jsonl]."
)


def _registry(entities_file: str | None):
    from index.linking.registry import Registry

    return Registry.load(_settings(entities_file=entities_file).registry_path)


@entities.command("list")
@index_dir_option
@click.option("--type", "type_", type=click.Choice(["person", "org", "place", "other"]))
@click.option("--query", "-q", help="Substring of a name or alias.")
@click.option("--limit", "-n", default=50, show_default=True)
@friendly
def entities_list(index_dir: str | None, type_: str | None, query: str | None, limit: int) -> None:
    """Entities of the current index, most mentioned first."""
    from search.searcher import Searcher

    rows = Searcher.open(_settings(index_dir=index_dir)).entities(type=type_, q=query, limit=limit)
    click.echo(f"{rows['total']} entities")
    for e in rows["entities"]:
        click.echo(f"{e['mentions']:>5}  {e['type']:<6} {e['id']:<40} {e['name']}")


@entities.command("show")
@click.argument("entity_id")
@index_dir_option
@entities_file_option
@friendly
def entities_show(entity_id: str, index_dir: str | None, entities_file: str | None) -> None:
    """One entity: registry record, surface forms, mentions and quotes in the index."""
    from index.errors import IndexMissing, NotFound
    from search.searcher import Searcher

    registry = _registry(entities_file)
    record = registry.get(entity_id)
    if record is not None:
        click.echo(json.dumps(record.to_dict(), ensure_ascii=False, indent=2))
    try:
        ent = Searcher.open(_settings(index_dir=index_dir)).entity(entity_id)
    except (IndexMissing, NotFound):
        if record is None:
            raise
        return
    click.echo(
        f"{ent['name']} ({ent['type']}), {ent['mention_count']} paragraphs; seen as: "
        + ", ".join(ent.get("surfaces", []))
    )
    for q in ent["quotes"]:
        click.echo(f"  said ({q.get('cue') or 'no cue'}, {q.get('how') or '?'}): {q['text']}")
    click.echo(
        "  co-mentioned: " + ", ".join(f"{c['name']} ({c['count']})" for c in ent["co_mentioned"][:10])
    )


@entities.command("merge")
@click.argument("source")
@click.argument("target")
@entities_file_option
@friendly
def entities_merge(source: str, target: str, entities_file: str | None) -> None:
    """Merge SOURCE into TARGET (TARGET keeps its id; SOURCE's names become aliases)."""
    _registry(entities_file).merge(source, target)
    click.echo(f"merged {source} into {target}; run `personae build` to apply")


@entities.command("split")
@click.argument("entity_id")
@click.argument("alias")
@click.option("--new-id", default=None)
@entities_file_option
@friendly
def entities_split(entity_id: str, alias: str, new_id: str | None, entities_file: str | None) -> None:
    """Move ALIAS off ENTITY_ID into an entity of its own."""
    made = _registry(entities_file).split(entity_id, alias, new_id)
    click.echo(f"split {alias!r} off {entity_id} into {made}; run `personae build` to apply")


@entities.command("rename")
@click.argument("entity_id")
@click.argument("name")
@entities_file_option
@friendly
def entities_rename(entity_id: str, name: str, entities_file: str | None) -> None:
    """Give ENTITY_ID a new display name."""
    _registry(entities_file).rename(entity_id, name)
    click.echo(f"renamed {entity_id} to {name!r}; run `personae build` to apply")


@entities.command("reject")
@click.argument("id_or_surface")
@entities_file_option
@friendly
def entities_reject(id_or_surface: str, entities_file: str | None) -> None:
    """Never link this entity id, or this surface string."""
    _registry(entities_file).reject(id_or_surface)
    click.echo(f"rejected {id_or_surface!r}; run `personae build` to apply")


@entities.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["wikidata", "ftm"]), default=None,
              help="Wikidata JSON dump lines or a FollowTheMoney entity stream [told from the first line].")
@click.option("--type", "types", multiple=True, type=click.Choice(["person", "org", "place", "other"]),
              help="Import only entities of this type (repeatable) [all].")
@entities_file_option
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
@friendly
def entities_import(
    file: str, fmt: str | None, types: tuple[str, ...], entities_file: str | None, as_json: bool
) -> None:
    """Import a knowledge base FILE (.json/.jsonl, or .gz/.bz2) into the registry.

    Entities already in the registry (same id or Wikidata id) are merged: missing values are filled, names
    and titles added; differing values are kept and reported. Importing the same file again changes nothing.
    """
    from index.linking.kb import import_file

    report = import_file(file, _registry(entities_file), fmt, types=types or None)
    click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if as_json else report.summary())


@entities.command("export-judgements")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@click.option("--user", default="personae", show_default=True, help="Who made the judgements.")
@entities_file_option
@friendly
def entities_export_judgements(file: str, user: str, entities_file: str | None) -> None:
    """Write the registry's merge/split/rename/reject decisions as nomenklatura judgements to FILE."""
    from index.linking.judgements import export_judgements

    n = export_judgements(_registry(entities_file), file, user=user)
    click.echo(f"wrote {n} judgements to {file}")


@entities.command("import-judgements")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@entities_file_option
@friendly
def entities_import_judgements(file: str, entities_file: str | None) -> None:
    """Read nomenklatura judgements from FILE into the registry's decisions; the next build applies them."""
    from index.linking.judgements import import_judgements

    click.echo(import_judgements(_registry(entities_file), file).summary(file))


@cli.command("eval-links")
@click.argument("gold", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=int, default=None, help="Only the first N articles.")
@entities_file_option
@click.option(
    "--empty-registry/--with-registry",
    default=True,
    show_default=True,
    help="Gold sets are not about the seed corpus: by default link with an empty registry.",
)
@friendly
def eval_links(gold: str, limit: int | None, entities_file: str | None, empty_registry: bool) -> None:
    """Mention P/R/F1 and B-cubed clustering of entity links against an ELEVANT-format gold set."""
    from index.linking.evaluate import evaluate_links, format_report
    from index.linking.resolve import make_linker

    settings = _settings(entities_file=entities_file)
    linker = make_linker(None if empty_registry else settings.registry_path, settings.ner_model,
                         settings.ner_window)
    click.echo(format_report(evaluate_links(gold, linker, limit=limit)))


@cli.command("export-milvus")
@index_dir_option
@click.option("--uri", required=True, help="Milvus: a local file (milvus-lite) or http://host:19530.")
@click.option("--collection", default="personae", show_default=True, help="Collection to (re)create.")
@click.option("--shards", default=1, show_default=True, help="Shards (a cluster only).")
@click.option("--replicas", default=1, show_default=True, help="In-memory replicas (a cluster only).")
@click.option("--keep", default=2, show_default=True, type=click.IntRange(min=1),
              help="Per-build collections kept (this one and the newest others); older ones are dropped.")
@friendly
def export_milvus(
    index_dir: str | None, uri: str, collection: str, shards: int, replicas: int, keep: int
) -> None:
    """Load the current build into Milvus (for backend=milvus): paragraphs and vectors, then documents,
    entities and the build files servers read, then make it the live build.

    Each build gets its own collections (COLLECTION__build_… and its __records): a server with
    backend=milvus needs no build folder; it keeps answering from the previous build until this export is
    loaded and made live, then switches.
    """
    import time
    from pathlib import Path

    from index import layout
    from search.backends.milvus import write

    settings = _settings(index_dir=index_dir)
    folder = layout.current_build(Path(settings.index_dir))
    t = time.perf_counter()
    info = write(folder, uri, collection, shards=shards, replicas=replicas, keep=keep)
    click.echo(
        f"exported {info['rows']} paragraphs ({info['dim']}-d) and {info['records']} record rows of "
        f"{folder.name} to {uri} collection {info['collection']!r} in {time.perf_counter() - t:.1f}s; it is "
        f"live: serve it (no index folder needed) with PERSONAE_BACKEND=milvus PERSONAE_MILVUS_URI={uri}"
    )
    for name in info["dropped"]:
        click.echo(f"dropped older collection {name!r}")


def main() -> None:
    cli(prog_name="personae")


if __name__ == "__main__":
    main()
