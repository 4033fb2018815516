"""`python -m lumara_web <command>`: serve (the default), bench, stats.

`python -m lumara_web --port 5001` (no command) still serves, as `python app.py` does."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__

COMMANDS = {
    "serve": "start the server (the default): flags as in `python app.py --help`",
    "bench": "measure performance and write docs/BENCHMARKS.md (`bench --help`)",
    "stats": "what the database holds, without loading any model",
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
    elif command == "bench":
        from .bench import main as bench

        bench(rest)
    else:
        stats(rest)


def print_help() -> None:
    print(f"usage: python -m lumara_web [command] [options]   (Lumara {__version__})\n")
    for name, what in COMMANDS.items():
        print(f"  {name:<7} {what}")
    print("\n`python -m lumara_web <command> --help` shows a command's options.")


def stats(argv: list[str]) -> None:
    from . import db, migrations, store
    from .config import load_settings

    parser = argparse.ArgumentParser(prog="python -m lumara_web stats",
                                     description=COMMANDS["stats"])
    parser.add_argument("--data-dir", help="the data folder (default: as the server's)")
    parser.add_argument("--db-path", help="the database file (default: <data dir>/lumara.db)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    settings = load_settings({"data_dir": args.data_dir, "db_path": args.db_path})
    path = settings["db_path"]
    if not path.exists():
        sys.exit(f"lumara: no database at {path} (start the server once, or pass --data-dir).")
    conn = db.connect(path)
    try:
        migrations.migrate(conn)  # the server would do the same on its next start
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
                "pending_contradictions", "cached_embeddings"):
        print(f"  {key.replace('_', ' '):<22} {figures[key]}")
