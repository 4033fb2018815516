"""Lumara: a personal memory assistant that runs entirely on this machine."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

__version__ = "0.1.0"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)

# Objects a test (or an embedding program) may inject instead of the real models.
COMPONENT_KEYS = ("embedder", "engine")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Wire the app. `test_config` holds setting overrides (see config.SETTINGS) and may
    inject components: {"embedder": FakeEmbedder()} or {"engine": FakeEngine()} replace the
    real models."""
    from . import api, conversations_api, db, migrations, review_api, store, views, web_context, ws
    from . import metrics_views, openai_api, security
    from . import reembed_api, transfer_api
    from .chat import ChatService
    from .config import load_settings
    from .embeddings import EmbeddingService, PersistentEmbeddingCache
    from .engine import LlamaEngine
    from .extraction import MemoryExtractor
    from .insights import ContradictionJudge
    from .memories import MemoryService
    from .memory_types import TypeClassifier
    from .onnx_embedder import load_embedder
    from .perf import PerfMonitor, RssSampler, record_startup
    from .remote_engine import RemoteEngine
    from .review import ReviewService
    from .vector_index import VectorIndex

    overrides = dict(test_config or {})
    components = {key: overrides.pop(key) for key in COMPONENT_KEYS if key in overrides}
    settings = load_settings(overrides)

    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"),
                static_folder=str(PROJECT_ROOT / "static"))
    app.config["MAX_CONTENT_LENGTH"] = settings["max_request_bytes"]
    app.json.sort_keys = False  # keep "memory" before its findings, as documented

    first_setup = not Path(settings["db_path"]).exists()
    settings["data_dir"].mkdir(parents=True, exist_ok=True)
    monitor = PerfMonitor()
    try:
        conn = db.connect(settings["db_path"])
        try:
            migrations.migrate(conn)
            store.purge_trash_older_than(conn, settings["trash_days"])
            problems = store.check_integrity(conn, quick=True).problems()
        finally:
            conn.close()
    except (db.driver()[0].DatabaseError, OSError) as error:
        # Nothing can run on a file SQLite cannot read or open: say which and what to do.
        raise _unusable_database(settings["db_path"], error) from None
    if problems:  # the app starts; /health and the page show them
        log.error("database %s has problems: %s", settings["db_path"], " ".join(problems))

    engine = components.get("engine")
    if engine is None and settings["engine_url"]:  # chat on an external server
        engine = RemoteEngine(
            url=settings["engine_url"], model=settings["engine_model"],
            api_key=settings["engine_api_key"], n_ctx=settings["n_ctx"],
            max_queue=settings["max_queue"])
    engine = engine or LlamaEngine(
        model_path=settings["model"], n_ctx=settings["n_ctx"], max_queue=settings["max_queue"],
        extra_buffer_types=settings["llama_extra_buffers"],
        prompt_cache_mb=settings["prompt_cache_mb"], niceness=settings["inference_niceness"],
        kv_cache_type=settings["kv_cache_type"])
    embedder = components.get("embedder")
    embeddings = EmbeddingService(
        cache=PersistentEmbeddingCache(settings["db_path"]),
        memo_size=settings["embedding_memo_size"],
        batch_size=settings["embedding_batch_size"],
        wait_seconds=settings["model_wait_seconds"],
        embedder=embedder,
        # ONNX Runtime, exported once into <data_dir>/models; sentence-transformers (torch,
        # ~400 MB more memory) only if that fails: see onnx_embedder.py.
        loader=None if embedder else functools.partial(
            load_embedder, settings["embedding_model"], settings["embedding_batch_size"],
            settings["data_dir"] / "models"),
        runner=engine.run_task,  # all inference on one thread: see engine.py
        monitor=monitor)
    # One similarity index per process and database; it loads in the background and
    # searches use sqlite-vec until it is ready (see vector_index.py).
    vector_index = VectorIndex(settings["db_path"], cache_dir=settings["data_dir"] / "index")
    memories = MemoryService(embeddings, settings, vector_index, monitor)
    chat = ChatService(engine=engine, embeddings=embeddings, memories=memories,
                       extractor=MemoryExtractor(engine, TypeClassifier(embeddings)),
                       judge=ContradictionJudge(engine), settings=settings, monitor=monitor)
    services = web_context.Lumara(settings=settings, embeddings=embeddings, memories=memories,
                                  engine=engine, review=ReviewService(memories), chat=chat,
                                  startup_problems=problems, monitor=monitor,
                                  rss=RssSampler(monitor))
    web_context.init_app(app, services)
    app.register_blueprint(api.bp)
    app.register_blueprint(conversations_api.bp)
    app.register_blueprint(review_api.bp)
    app.register_blueprint(transfer_api.bp)
    reembed_api.init_app(app, services)  # /api/reembed; re-embeds at start if the model changed
    app.register_blueprint(openai_api.bp)
    app.register_blueprint(views.bp)
    security.init_app(app)  # first of the request hooks: refused requests go no further
    metrics_views.init_app(app)
    ws.init_app(app)
    _register_error_handlers(app)
    embeddings.start_loading()
    vector_index.start_loading()
    engine.start()
    chat.warm_up()
    record_startup(monitor, {"embedding": embeddings.model, "chat": engine.model},
                   first_setup=first_setup)
    return app


def _unusable_database(path: Path, error: Exception) -> Exception:
    from . import db
    from .errors import DatabaseError

    if isinstance(error, (db.driver()[0].OperationalError, OSError)):
        advice = ("Check that this user may read and write it and its folder, and that no "
                  "other program holds it locked; or choose another file with --db-path.")
    else:  # not a database, or damaged where SQLite must read first (header, schema)
        advice = ("The file is damaged or not a Lumara database. Restore it from a backup, "
                  "or move it aside (with any -wal and -shm files next to it) and Lumara "
                  "starts with an empty one; or choose another file with --db-path.")
    return DatabaseError(f"Cannot open the database {path} ({error}). {advice}",
                         code="database_unusable")


def _wants_json() -> bool:
    return (request.path in ("/api", "/health", "/v1")
            or request.path.startswith(("/api/", "/v1/")))


def _register_error_handlers(app: Flask) -> None:
    from .errors import LumaraError

    @app.errorhandler(LumaraError)
    def lumara_error(error: LumaraError):
        return jsonify(error.to_dict()), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if not _wants_json():
            return error
        code = (error.name or "error").lower().replace(" ", "_")
        response = jsonify({"error": {"code": code, "message": error.description}})
        response.status_code = error.code
        # Keep the exception's own headers (a 405 must say which methods are Allowed),
        # but not its HTML content type.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers.add(name, value)
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        body = {"error": {"code": "internal_error",
                          "message": f"Something went wrong on the server "
                                     f"({type(error).__name__}); nothing was changed."}}
        return jsonify(body), 500
