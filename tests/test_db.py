import pytest

from lumara_web.storage import db, migrations, store


@pytest.fixture
def conn(tmp_path):
    connection = db.connect(tmp_path / "nested" / "lumara.db")
    migrations.migrate(connection)
    yield connection
    connection.close()


def test_connection_loads_sqlite_vec_in_wal_mode(conn):
    info = db.versions(conn)
    assert info["sqlite_vec_version"].startswith("v")
    assert info["driver"] in ("sqlite3", "pysqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_driver_is_stdlib_only_when_it_can_load_extensions():
    import sqlite3

    module, name = db.driver()
    can_load = hasattr(sqlite3.Connection, "enable_load_extension")
    assert (name == "sqlite3") == can_load
    assert hasattr(module.Connection, "enable_load_extension")


def test_migrations_apply_once_and_record_themselves(tmp_path):
    path = tmp_path / "lumara.db"
    first = db.connect(path)
    assert migrations.migrate(first) == [m.__name__ for m in migrations.MIGRATIONS]
    first.close()
    second = db.connect(path)
    assert migrations.migrate(second) == []
    versions = [row[0] for row in second.execute("SELECT version FROM schema_migrations")]
    assert versions == list(range(1, len(migrations.MIGRATIONS) + 1))
    tables = {row[0] for row in second.execute("SELECT name FROM sqlite_master")}
    assert {"memories", "memory_vectors", "embedding_cache"} <= tables
    second.close()


def test_transaction_rolls_back_everything_on_error(conn):
    with pytest.raises(RuntimeError):
        with db.transaction(conn):
            conn.execute("INSERT INTO memories (content, type, created_at, updated_at)"
                         " VALUES ('x', 'knowledge', 'now', 'now')")
            raise RuntimeError("boom")
    assert store.count_memories(conn) == 0
    assert not conn.in_transaction


def test_schema_refuses_invalid_rows(conn):
    bad_rows = [("   ", "knowledge", "[]"), ("ok", "opinion", "[]"), ("ok", "method", "not json")]
    for content, memory_type, tags in bad_rows:
        with pytest.raises(Exception, match="CHECK constraint failed"):
            conn.execute("INSERT INTO memories (content, type, tags, created_at, updated_at)"
                         " VALUES (?, ?, ?, 'now', 'now')", (content, memory_type, tags))
    assert store.count_memories(conn) == 0
