"""`python -m lumara_web <command>`: serve (the default), mcp, stats, export, import, reembed.
(The benchmark is a package of its own beside the product: `python -m lumara_bench`.)

`python -m lumara_web --port 5001` (no command) still serves, as `python app.py` does."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .version import __version__

COMMANDS = {
    "serve": "start the server (the default): flags as in `python app.py --help`",
    "mcp": "serve the memories to an MCP client (Claude Desktop, Cursor…) over stdio",
    "stats": "what the database holds, without loading any model",
    "export": "write every memory to a JSON (or Markdown) file",
    "import": "add the memories of an export file (duplicates are skipped)",
    "reembed": "re-embed every memory with the current embedding model (after changing it)",
    "backup": "write a backup of the database now (into <data dir>/backups)",
    "restore": "replace the database with a backup (stop the server first)",
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else "serve"
    rest = argv[1:] if argv and argv[0] in COMMANDS else argv
    if argv and argv[0] in ("-h", "--help"):
        print_help()
        return
    if command == "serve":
        from .server import main as serve

        serve(rest)
    elif command == "mcp":
        from .mcp.stdio import main as serve_mcp

        serve_mcp(rest)
    elif command == "stats":
        stats(rest)
    elif command == "export":
        export(rest)
    elif command == "import":
        import_file(rest)
    elif command == "backup":
        backup(rest)
    elif command == "restore":
        restore(rest)
    else:
        reembed(rest)


def print_help() -> None:
    print(f"usage: python -m lumara_web [command] [options]   (Lumara {__version__})\n")
    for name, what in COMMANDS.items():
        print(f"  {name:<7} {what}")
    print("\n`python -m lumara_web <command> --help` shows a command's options.")


def command_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m lumara_web {command}",
                                     description=COMMANDS[command])
    parser.add_argument("--data-dir", help="the data folder (default: as the server's)")
    parser.add_argument("--db-path", help="the database file (default: <data dir>/lumara.db)")
    parser.add_argument("--embedding-model", help="as the server's --embedding-model")
    return parser


def existing_database(args: argparse.Namespace, *, create: bool = False) -> dict:
    """The settings for the command's database; exits with a clear message if it is absent
    (or, with `create`, makes an empty one: importing into a new folder restores a backup)."""
    from .config import load_settings
    from .storage import db, migrations

    settings = load_settings({"data_dir": args.data_dir, "db_path": args.db_path,
                              "embedding_model": args.embedding_model})
    if create and not settings["db_path"].exists():
        conn = db.connect(settings["db_path"])
        try:
            migrations.migrate(conn)
        finally:
            conn.close()
    if not settings["db_path"].exists():
        sys.exit(f"lumara: no database at {settings['db_path']} (start the server once, or "
                 "pass --data-dir).")
    return settings


def stats(argv: list[str]) -> None:
    from .storage import db, migrations, store

    parser = command_parser("stats")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    settings = existing_database(args)
    path = settings["db_path"]
    conn = db.connect(path)
    try:
        # The server would do the same on its next start, after the same backup.
        migrations.migrate(conn, before=lambda: back_up_before(settings, "migration"))
        figures = {"database": str(path), "bytes": path.stat().st_size,
                   **store.collection_stats(conn)}
    finally:
        conn.close()
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    kinds = ", ".join(f"{count} {kind}" for kind, count in figures["memories_by_type"].items())
    print(f"{figures['database']} ({figures['bytes'] / 2**20:.1f} MB)")
    print(f"  memories               {figures['memories']}" + (f" ({kinds})" if kinds else ""))
    for key in ("vectors", "conversations", "messages", "pending_suggestions",
                "pending_contradictions", "cached_embeddings", "deleted_memories"):
        print(f"  {key.replace('_', ' '):<22} {figures[key]}")


def export(argv: list[str]) -> None:
    from .inference.onnx_embedder import embedding_model_id
    from .memory import transfer
    from .storage import db, store
    from .storage.private import write_private_text

    parser = command_parser("export")
    parser.add_argument("--output", "-o", default="-", help="file to write ('-': stdout)")
    parser.add_argument("--markdown", action="store_true", help="Markdown for people")
    parser.add_argument("--vectors", action="store_true", help="include the vectors")
    parser.add_argument("--versions", action="store_true",
                        help="include the earlier versions of edited memories")
    args = parser.parse_args(argv)
    settings = existing_database(args)
    conn = db.connect(settings["db_path"])
    try:
        if args.markdown:
            text = transfer.export_markdown(conn, exported_at=store.utc_now())
        else:
            text = json.dumps(transfer.build_export(
                conn, model_id=embedding_model_id(settings["embedding_model"]),
                include_vectors=args.vectors, include_versions=args.versions,
                exported_at=store.utc_now()),
                ensure_ascii=False, indent=1) + "\n"
    finally:
        conn.close()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_private_text(Path(args.output), text)
        print(f"written to {args.output}", file=sys.stderr)


def import_file(argv: list[str]) -> None:
    from .errors import LumaraError
    from .memory import transfer
    from .storage import db

    parser = command_parser("import")
    parser.add_argument("file", help="an export file (JSON)")
    args = parser.parse_args(argv)
    settings = existing_database(args, create=True)
    try:
        body = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        sys.exit(f"lumara: cannot read {args.file} as JSON: {error}")
    if not isinstance(body, dict):
        sys.exit(f"lumara: {args.file} is not an export file (a JSON object).")
    back_up_before(settings, "import")
    embeddings = local_embeddings(settings)
    conn = db.connect(settings["db_path"])
    try:
        document = transfer.parse_import(body, settings)
        result = transfer.apply_import(conn, document, embeddings=embeddings,
                                       settings=settings)
    except LumaraError as error:
        sys.exit(f"lumara: nothing was imported: {error.message}")
    finally:
        conn.close()
    print(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))


def local_embeddings(settings: dict) -> Any:
    """The server's embedding model and caches, loaded in this process."""
    from .inference.embeddings import EmbeddingService, PersistentEmbeddingCache
    from .inference.onnx_embedder import load_embedder

    embeddings = EmbeddingService(
        cache=PersistentEmbeddingCache(settings["db_path"]), loader=lambda: load_embedder(
            settings["embedding_model"], settings["embedding_batch_size"],
            settings["data_dir"] / "models"))
    embeddings.start_loading()
    return embeddings


def reembed(argv: list[str]) -> None:
    from .memory.reembed import progress_bar, reembed_all
    from .storage import db

    args = command_parser("reembed").parse_args(argv)
    settings = existing_database(args)
    back_up_before(settings, "reembed")
    embeddings = local_embeddings(settings)
    conn = db.connect(settings["db_path"])

    def show(done: int, total: int) -> None:
        print(f"\rre-embedding {progress_bar(done, total)}", end="", file=sys.stderr,
              flush=True)

    try:
        replaced = reembed_all(conn, embeddings, progress=show)
    finally:
        conn.close()
    print(f"\n{replaced} memories re-embedded with {embeddings.model_id}.", file=sys.stderr)


def back_up_before(settings: dict, operation: str) -> None:
    """The backup an operation waits for (none with --backups 0); exits if it failed."""
    from .errors import LumaraError
    from .storage.backups import Backups

    try:
        Backups.for_settings(settings).before(operation)
    except LumaraError as error:
        sys.exit(f"lumara: {error.message}")


def backups_parser(command: str) -> argparse.ArgumentParser:
    parser = command_parser(command)
    parser.add_argument("--backups", type=int, metavar="N",
                        help="backups kept, the oldest removed (default: as the server's, 7; "
                             "0 removes none)")
    return parser


def backup(argv: list[str]) -> None:
    from .errors import LumaraError
    from .storage.backups import Backups

    args = backups_parser("backup").parse_args(argv)
    settings = existing_database(args)
    if args.backups is not None:
        settings["backups"] = max(args.backups, 0)
    try:
        made = Backups.for_settings(settings).create("manual")
    except LumaraError as error:
        sys.exit(f"lumara: {error.message}")
    print(made.path)
    print(f"{made.memories} memories, {made.size / 2**20:.1f} MB, checked whole.",
          file=sys.stderr)


def restore(argv: list[str]) -> None:
    from .errors import LumaraError
    from .storage.backups import Backups, parse_name
    from .storage.server_lock import no_server_running

    parser = backups_parser("restore")
    parser.add_argument("file", help="a backup (its path, or its name in <data dir>/backups) "
                                     "or another Lumara database file")
    args = parser.parse_args(argv)
    # A lost database is what a restore is for: a data folder without one gets an empty one.
    settings = existing_database(args, create=True)
    if args.backups is not None:
        settings["backups"] = max(args.backups, 0)
    backups = Backups.for_settings(settings)
    source = Path(args.file)
    if not source.exists() and parse_name(args.file):
        source = backups.folder / args.file
    lock = no_server_running(settings["data_dir"])
    if lock is None:
        sys.exit("lumara: nothing was restored: a Lumara server is using this data folder. "
                 "Stop it first, or restore from its page (Data, then Backups).")
    try:
        restored = backups.restore(source)
    except LumaraError as error:
        sys.exit(f"lumara: nothing was restored: {error.message}")
    finally:
        lock.close()
    print(f"Restored {source} into {settings['db_path']}: {restored.memories} memories. "
          f"The database as it was is kept in {restored.kept.path}.")
