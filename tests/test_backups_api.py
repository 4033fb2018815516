"""/api/backups through Flask with the fakes: list, back up now, restore while the server
runs (search finds what the backup held), refused names and files that change nothing, and
the backups made before an import, a re-embed and emptying the trash — or their refusal
when the backup cannot be written."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from .helpers import (
    FACT,
    UNRELATED,
    add,
    assert_json_error,
    get_json,
    result_ids,
    search,
    snapshot,
    wait_until,
)


def backups(client) -> list[dict]:
    return get_json(client, "/api/backups")["items"]


def back_up(client) -> dict:
    response = client.post("/api/backups")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["backup"]


def listed_ids(client) -> list[int]:
    body = get_json(client, "/api/memories", query_string={"limit": 200})
    return [memory["id"] for memory in body["items"]]


def test_an_empty_list_says_how_many_are_kept_and_where(client, app):
    body = get_json(client, "/api/backups")
    settings = app.extensions["lumara"].settings
    assert body == {"items": [], "keep": 7, "folder": str(settings["data_dir"] / "backups")}


def test_back_up_now_lists_it_with_date_size_and_memory_count(client):
    add(client, FACT)
    add(client, UNRELATED)
    made = back_up(client)
    assert made["reason"] == "manual" and made["memories"] == 2 and made["size"] > 0
    assert made["name"].endswith("Z-manual.db") and made["created_at"].endswith("Z")
    assert backups(client) == [made]


def test_a_restore_while_the_server_runs_gives_the_memories_back(client, app):
    kept = add(client, FACT)["memory"]
    assert result_ids(search(client, q=FACT)) == [kept["id"]]  # the index has loaded it
    made = back_up(client)
    assert client.delete(f"/api/memories/{kept['id']}").status_code == 200
    later = add(client, UNRELATED)["memory"]
    assert result_ids(search(client, q=FACT)) == []

    response = client.post(f"/api/backups/{made['name']}/restore")

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["restored"] == made["name"] and body["memories"] == 1
    assert body["previous"]["reason"] == "restore" and body["previous"]["memories"] == 1
    assert listed_ids(client) == [kept["id"]]
    assert get_json(client, f"/api/memories/{kept['id']}")["memory"]["content"] == FACT
    assert result_ids(search(client, q=FACT)) == [kept["id"]]
    assert later["id"] not in result_ids(search(client, q=UNRELATED))
    assert [item["reason"] for item in backups(client)] == ["restore", "manual"]


@pytest.mark.parametrize("name, status, code", [
    ("not-a-backup.db", 400, "invalid_backup_name"),
    ("lumara.db", 400, "invalid_backup_name"),
    ("..", 400, "invalid_backup_name"),
    ("lumara-2020-01-02T030405.006Z-daily.db", 404, "backup_not_found"),
])
def test_a_bad_name_changes_nothing(client, app, name, status, code):
    add(client, FACT)
    back_up(client)
    before, listed = snapshot(app), backups(client)
    assert_json_error(client.post(f"/api/backups/{name}/restore"), status, code)
    assert snapshot(app) == before and backups(client) == listed


@pytest.mark.parametrize("path", ["..%2F..%2Flumara.db", "..%2Flumara.db",
                                  "%2E%2E/%2E%2E/lumara.db", "backups/../lumara.db"])
def test_a_path_in_the_name_finds_no_route(client, app, path):
    add(client, FACT)
    before = snapshot(app)
    response = client.post(f"/api/backups/{path}/restore")
    assert response.status_code in (400, 404)
    assert snapshot(app) == before and backups(client) == []


def test_a_damaged_backup_is_refused_and_nothing_changes(client, app):
    add(client, FACT)
    made = back_up(client)
    folder = app.extensions["lumara"].backups.folder
    (folder / made["name"]).write_bytes(b"this is no longer a database " * 400)
    add(client, UNRELATED)
    before = snapshot(app)
    response = client.post(f"/api/backups/{made['name']}/restore")
    assert_json_error(response, 400, "backup_damaged")
    assert made["name"] in response.get_json()["error"]["message"]
    assert snapshot(app) == before
    assert [item["name"] for item in backups(client)] == [made["name"]]


def test_no_restore_while_an_import_writes(client, app):
    add(client, FACT)
    made = back_up(client)
    job = app.extensions["lumara"].import_job
    with job._lock:  # as if an import were running
        job._state = replace(job._state, state="running")
    before = snapshot(app)
    assert_json_error(client.post(f"/api/backups/{made['name']}/restore"), 409, "job_running")
    assert snapshot(app) == before


def test_another_site_cannot_back_up_or_restore(client):
    add(client, FACT)
    made = back_up(client)
    foreign = {"Origin": "http://evil.example"}
    assert client.post("/api/backups", headers=foreign).status_code == 403
    assert client.post(f"/api/backups/{made['name']}/restore",
                       headers=foreign).status_code == 403
    assert len(backups(client)) == 1


# -- before an operation ----------------------------------------------------------------
def document(*contents: str) -> dict:
    return {"format": "lumara-export", "version": 1, "memories": [
        {"content": content, "type": "knowledge"} for content in contents]}


def wait_job(client, path: str) -> dict:
    wait_until(lambda: get_json(client, path)["state"] in ("done", "failed"),
               what=f"{path} to finish")
    return get_json(client, path)


def test_an_import_a_reembed_and_emptying_the_trash_are_backed_up_first(client):
    doomed = add(client, FACT)["memory"]
    assert client.post("/api/import", json=document(UNRELATED)).status_code == 202
    assert wait_job(client, "/api/import")["state"] == "done"
    made = backups(client)
    assert [item["reason"] for item in made] == ["import"]
    assert made[0]["memories"] == 1  # as it was before the import

    assert client.post("/api/reembed").status_code == 202
    assert wait_job(client, "/api/reembed")["state"] == "done"
    assert backups(client)[0]["reason"] == "reembed"

    client.delete(f"/api/memories/{doomed['id']}")
    assert client.delete("/api/trash").get_json() == {"purged": 1}
    assert [item["reason"] for item in backups(client)] == ["empty-trash", "reembed", "import"]


def block_backups(app) -> None:
    """A file where the backup folder should be: every backup fails."""
    folder = app.extensions["lumara"].backups.folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.write_text("in the way")


def test_when_the_backup_fails_the_operation_does_not_run(client, app):
    doomed = add(client, FACT)["memory"]
    client.delete(f"/api/memories/{doomed['id']}")
    block_backups(app)
    before = snapshot(app)

    response = client.delete("/api/trash")
    assert_json_error(response, 503, "backup_failed")
    assert "emptying of the trash" in response.get_json()["error"]["message"]
    assert snapshot(app) == before

    assert client.post("/api/import", json=document(UNRELATED)).status_code == 202
    status = wait_job(client, "/api/import")
    assert status["state"] == "failed"
    assert status["error"].startswith("Lumara could not back up your memories before this "
                                      "import, so it did not start")
    assert client.post("/api/reembed").status_code == 202
    status = wait_job(client, "/api/reembed")
    assert status["state"] == "failed" and "before this re-embed" in status["error"]
    assert snapshot(app) == before
    assert_json_error(client.post("/api/backups"), 503, "backup_failed")


def test_with_backups_off_operations_make_none(make_app):
    app = make_app(backups=0)
    client = app.test_client()
    add(client, FACT)
    assert client.post("/api/import", json=document(UNRELATED)).status_code == 202
    assert wait_job(client, "/api/import")["state"] == "done"
    assert client.delete("/api/trash").status_code == 200
    assert get_json(client, "/api/backups")["keep"] == 0
    assert backups(client) == []
    assert not app.extensions["lumara"].daily_backups.thread


def test_the_daily_thread_runs_with_the_server(app):
    daily = app.extensions["lumara"].daily_backups
    assert daily.thread is not None and daily.thread.daemon and daily.thread.is_alive()
