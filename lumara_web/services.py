"""The services container: everything heavy, built once per process from the settings and
shared by the web layer, the commands and the benchmark. Knows nothing of Flask."""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .access import AccessPolicy, build_policy
from .chat.conversations import ConversationService
from .chat.service import ChatService
from .errors import DatabaseError, LumaraError
from .inference.embeddings import EmbeddingService, PersistentEmbeddingCache
from .inference.engine import Engine, LlamaEngine
from .inference.onnx_embedder import load_embedder
from .inference.remote_engine import RemoteEngine
from .memory.extraction import MemoryExtractor
from .memory.import_job import ImportJob
from .memory.pair_judge import ContradictionJudge
from .memory.reembed_job import ReembedJob
from .memory.review import ReviewService
from .memory.service import MemoryService
from .observability.perf import PerfMonitor, RssSampler, record_startup
from .search.vector_index import VectorIndex
from .storage import db, meta_store, migrations, store
from .storage.backups import Backups, DailyBackups, Restored
from .storage.private import make_private

log = logging.getLogger(__name__)

# Objects a test (or an embedding program) may pass instead of the real models.
COMPONENT_KEYS = ("embedder", "engine")
# A database file larger than this is checked after start-up, in the background:
# quick_check reads every page (≈ 2.5 s for the 4 GB of 1,000,000 memories on this kind
# of machine) and HTTP should answer within a second. /health says "checked": false
# meanwhile; smaller files (≈ 50 ms) are checked before the server answers.
INTEGRITY_SYNC_BYTES = 128 * 2**20


@dataclass
class Services:
    """One per process; `start()` sets the background loads going."""

    settings: dict
    access: AccessPolicy
    embeddings: EmbeddingService
    vector_index: VectorIndex
    memories: MemoryService
    engine: Engine
    review: ReviewService
    chat: ChatService
    conversations: ConversationService
    reembed: ReembedJob
    import_job: ImportJob
    monitor: PerfMonitor
    rss: RssSampler
    backups: Backups
    daily_backups: DailyBackups
    startup_problems: list[str] = field(default_factory=list)
    first_setup: bool = False
    database_checked: threading.Event = field(default_factory=threading.Event)

    def connect(self) -> Any:
        """A new connection to the database, prepared as every connection is (storage/db.py);
        the caller closes it. The web layer gets one per request or chat session."""
        return db.connect(self.settings["db_path"])

    def database_status(self, conn: Any) -> dict:
        """The database as /health reports it: driver and versions, file, memories stored
        and the problems found at start-up."""
        return {**db.versions(conn), "path": str(self.settings["db_path"]),
                "memories": self.memories.count(conn), "problems": self.startup_problems,
                "checked": self.database_checked.is_set()}

    def start(self) -> None:
        """Load the models and the index in the background; nothing here blocks."""
        if not self.database_checked.is_set():
            threading.Thread(target=self._check_database, name="lumara-integrity-check",
                             daemon=True).start()
        # Re-embeds by itself once the model loads if the stored vectors come from another.
        self.reembed.start_if_model_changed()
        self.embeddings.start_loading()
        self.vector_index.start_loading()
        self.engine.start()
        self.chat.warm_up()
        self.daily_backups.start()
        record_startup(self.monitor, {"embedding": self.embeddings.model,
                                      "chat": self.engine.model},
                       first_setup=self.first_setup)

    def restore_backup(self, name: str) -> Restored:
        """Replace the live database with the backup `name` while the server runs (see
        storage/backups.py: the current one is backed up first, the vector index reloads by
        itself). Refused while an import or a re-embed is writing: their work would land in
        the restored database half done."""
        for job, what in ((self.import_job, "An import"), (self.reembed, "A re-embed")):
            if job.status()["state"] == "running":
                raise LumaraError(f"{what} is running: restore once it has finished.",
                                  code="job_running", status=409)
        restored = self.backups.restore(self.backups.find(name).path)
        # Vectors the backup's model made, if not the current one's, are made again.
        self.reembed.start_if_model_changed()
        return restored

    def _check_database(self) -> None:
        try:
            problems = check_database(self.settings["db_path"])
        except Exception as error:  # the driver's own error types: report, never crash
            problems = [f"the database could not be checked ({error})"]
        self.startup_problems.extend(problems)
        self.database_checked.set()


def build_services(settings: dict, components: dict[str, Any] | None = None) -> Services:
    """Prepare the database and build every service. `components` may hold an `embedder`
    or an `engine` that replaces the real model (tests pass fakes this way)."""
    components = components or {}
    first_setup = not Path(settings["db_path"]).exists()
    make_private(settings["data_dir"])
    backups = Backups.for_settings(settings)
    problems, checked = prepare_database(settings, backups)
    monitor = PerfMonitor()
    engine = components.get("engine") or build_engine(settings)
    embedder = components.get("embedder")
    embeddings = EmbeddingService(
        cache=PersistentEmbeddingCache(settings["db_path"]),
        memo_size=settings["embedding_memo_size"],
        batch_size=settings["embedding_batch_size"],
        wait_seconds=settings["model_wait_seconds"],
        embedder=embedder,
        # ONNX Runtime, exported once into <data_dir>/models; sentence-transformers (torch,
        # ~400 MB more memory) only if that fails: see inference/onnx_embedder.py.
        loader=None if embedder else functools.partial(
            load_embedder, settings["embedding_model"], settings["embedding_batch_size"],
            settings["data_dir"] / "models"),
        runner=engine.run_task,  # all inference on one thread: see inference/engine.py
        monitor=monitor)
    # One similarity index per process and database; it loads in the background and
    # searches use sqlite-vec until it is ready (see search/vector_index.py).
    vector_index = VectorIndex(settings["db_path"], cache_dir=settings["data_dir"] / "index")
    memories = MemoryService(embeddings, settings, vector_index, monitor)
    chat = ChatService(engine=engine, embeddings=embeddings, memories=memories,
                       extractor=MemoryExtractor(engine),
                       judge=ContradictionJudge(engine), settings=settings, monitor=monitor)
    return Services(settings=settings, access=build_policy(settings), embeddings=embeddings,
                    vector_index=vector_index, memories=memories, engine=engine,
                    review=ReviewService(memories), chat=chat,
                    conversations=ConversationService(),
                    reembed=ReembedJob(settings["db_path"], embeddings, backups=backups),
                    import_job=ImportJob(settings["db_path"], embeddings, settings, vector_index,
                                         backups=backups),
                    monitor=monitor,
                    rss=RssSampler(monitor), backups=backups,
                    daily_backups=DailyBackups(backups), startup_problems=problems,
                    first_setup=first_setup, database_checked=checked)


def build_engine(settings: dict) -> Engine:
    """The chat model: an external OpenAI-compatible server when one is set, else llama.cpp
    in this process."""
    if settings["engine_url"]:
        return RemoteEngine(
            url=settings["engine_url"], model=settings["engine_model"],
            api_key=settings["engine_api_key"], n_ctx=settings["n_ctx"],
            max_queue=settings["max_queue"])
    return LlamaEngine(
        model_path=settings["model"], n_ctx=settings["n_ctx"], max_queue=settings["max_queue"],
        extra_buffer_types=settings["llama_extra_buffers"],
        prompt_cache_mb=settings["prompt_cache_mb"], niceness=settings["inference_niceness"],
        kv_cache_type=settings["kv_cache_type"])


def prepare_database(settings: dict,
                     backups: Backups | None = None) -> tuple[list[str], threading.Event]:
    """Migrate (after a backup, when an existing database has migrations pending: if it
    fails, BackupFailed and the server does not start), purge old trash and run a quick
    integrity check (a large file: later, see INTEGRITY_SYNC_BYTES); the problems found (the
    app still starts: /health and the page show them) and an event set once the check has
    run."""
    path = settings["db_path"]
    checked = threading.Event()
    try:
        conn = db.connect(path)
        try:
            migrations.migrate(conn, before=None if backups is None
                               else lambda: backups.before("migration"))
            store.purge_trash_older_than(conn, settings["trash_days"])
            meta_store.database_id(conn)  # now, not when the index is first saved
        finally:
            conn.close()
        if Path(path).stat().st_size > INTEGRITY_SYNC_BYTES:
            return [], checked
        problems = check_database(path)
    except (db.driver()[0].DatabaseError, OSError) as error:
        # Nothing can run on a file SQLite cannot read or open: say which and what to do.
        raise unusable_database(path, error) from None
    checked.set()
    return problems, checked


def check_database(path: Path) -> list[str]:
    """The quick integrity check's problems, logged (empty when all is well)."""
    conn = db.connect(path)
    try:
        problems = store.check_integrity(conn, quick=True).problems()
    finally:
        conn.close()
    if problems:
        log.error("database %s has problems: %s", path, " ".join(problems))
    return problems


def unusable_database(path: Path, error: Exception) -> DatabaseError:
    if isinstance(error, (db.driver()[0].OperationalError, OSError)):
        advice = ("Check that this user may read and write it and its folder, and that no "
                  "other program holds it locked; or choose another file with --db-path.")
    else:  # not a database, or damaged where SQLite must read first (header, schema)
        advice = ("The file is damaged or not a Lumara database. Restore it from a backup, "
                  "or move it aside (with any -wal and -shm files next to it) and Lumara "
                  "starts with an empty one; or choose another file with --db-path.")
    return DatabaseError(f"Cannot open the database {path} ({error}). {advice}",
                         code="database_unusable")
