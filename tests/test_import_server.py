"""An import on the real server (`python app.py`, real models): killed in the middle it leaves
nothing; run again it answers searches and takes new memories meanwhile, then reports its
result."""

from __future__ import annotations

import itertools
import time

import pytest

from .live_server import WAIT_TIMEOUT, AppProcess

pytestmark = pytest.mark.live_server

SISTER = "My sister Ana lives in Lisbon."
PEOPLE = ["My cousin Ines", "The plumber", "Coach Ilse", "Grandpa Joe", "Neighbour Kofi",
          "Aunt Rosa", "My manager", "The vet"]
DEEDS = ["repaired the garden shed", "baked lemon cake", "sold an old camera",
         "ordered train tickets", "knitted a wool scarf", "tuned the piano",
         "planted basil seeds", "painted the fence"]
WHEN = ["on Tuesday", "before Easter", "after the storm", "last winter", "in March",
        "at dawn", "for my birthday", "during the holidays", "on a rainy Sunday",
        "while I was away"]
# Enough that embedding them takes seconds: the kill lands while the job runs.
CONTENTS = [f"{who} {did} {when}." for who, did, when in itertools.product(PEOPLE, DEEDS, WHEN)]


def another_models_export() -> dict:
    """Every memory is embedded again on import (the vectors are not this model's), and the
    last one repeats a stored memory."""
    return {"format": "lumara-export", "version": 1, "embedding_model": "someone/else",
            "dimensions": 384,
            "memories": [{"content": content} for content in CONTENTS] + [{"content": SISTER}]}


def wait_for_import(server: AppProcess, until, what: str) -> dict:
    deadline = time.monotonic() + WAIT_TIMEOUT
    while time.monotonic() < deadline:
        code, state = server.request("/api/import")
        assert code == 200, state
        if until(state):
            return state
        time.sleep(0.05)
    raise AssertionError(f"the import never got {what}:\n{server.output()}")


def test_a_killed_import_leaves_nothing_and_a_whole_one_runs_beside_the_api(
        tmp_path, embedding_cache_dir):
    data_dir = tmp_path / "lumara"
    with AppProcess(data_dir, models_dir=embedding_cache_dir) as server:
        server.wait_until("ok")
        code, _ = server.request("/api/memories", {"content": SISTER})
        assert code == 201
        code, accepted = server.request("/api/import", another_models_export())
        assert code == 202 and accepted["memories"] == len(CONTENTS) + 1
        state = wait_for_import(server, lambda s: s["phase"] == "embedding" and s["done"] > 0,
                                "to embed its first batch")
        assert state["state"] == "running"
        server.kill()

    with AppProcess(data_dir, models_dir=embedding_cache_dir) as server:
        health = server.wait_until("ok")
        assert health["database"]["memories"] == 1  # the killed import wrote nothing
        assert health["import"]["state"] == "idle"

        code, accepted = server.request("/api/import", another_models_export())
        assert code == 202
        code, refused = server.request("/api/import", another_models_export())
        assert code == 409 and refused["error"]["code"] == "import_running"
        # While it runs (before its last phase, which alone holds the write lock), the
        # server answers searches and takes new memories.
        wait_for_import(server, lambda s: s["phase"] in ("embedding", "checking"),
                        "under way")
        code, found = server.request("/api/memories/search?q=Where%20does%20my%20sister%20live")
        assert code == 200 and found["results"][0]["memory"]["content"] == SISTER
        code, added = server.request("/api/memories", {"content": "I water the tomatoes at 7."})
        assert code == 201, added

        done = wait_for_import(server, lambda s: s["state"] != "running", "to finish")
        assert done["state"] == "done", done
        result = done["result"]
        skipped = [(skip["content"], skip["existing_id"])
                   for skip in result["skipped_duplicates"]]
        # Some generated sentences are near-duplicates of each other for the real model.
        assert result["imported"] + len(skipped) == len(CONTENTS) + 1
        assert skipped[-1] == (SISTER, 1) and result["imported"] > len(CONTENTS) // 2
        assert set(done["phase_seconds"]) == {"embedding", "checking", "writing"}
        code, status = server.request(accepted["status_url"])
        assert code == 200 and status == done
        assert server.health()["database"]["memories"] == result["imported"] + 2
        code, found = server.request("/api/memories/search?q=Who%20fixed%20the%20shed")
        assert code == 200 and "repaired the garden shed" in found["results"][0]["memory"][
            "content"]
