"""The benchmark: a quick run on the real models completes and writes its table, and the
regression check compares ratios the way CI relies on."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lumara_bench.bench import Row, check_regressions, render, target_value
from lumara_web.observability.targets import TARGETS

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_a_quick_run_writes_the_target_table_and_its_json(tmp_path):
    output = tmp_path / "BENCH.md"
    result = subprocess.run(
        [sys.executable, "-m", "lumara_bench", "--quick", "--repeats", "5",
         "--batch", "20", "--conversations", "1", "--turns", "2", "--search-sizes", "1000",
         "--long-pairs", "2", "--import-memories", "100",
         "--no-server", "--output", str(output)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    table = output.read_text()
    assert "## The promised table" in table
    for target in TARGETS:
        assert target.operation in table
    rows = json.loads((tmp_path / "benchmarks.json").read_text())["rows"]
    by_key = {row["key"]: row for row in rows}
    assert {"embedding_single", "embedding_cached", "search", "chat_answer",
            "chat_ttft_long", "import"} <= set(by_key)
    assert by_key["import"]["unit"] == "memories/s"
    assert by_key["search"]["recall"] == pytest.approx(1.0)  # exact layout at 1,000
    for row in rows:
        assert row["ours_p50"] > 0
        if row["raw_p50"] is not None:
            assert row["ratio"] == pytest.approx(
                row["raw_p50"] / row["ours_p50"] if row["unit"].endswith("/s")
                else row["ours_p50"] / row["raw_p50"])


def row(key, ours, raw, unit="ms", gate=True):
    return Row(key, key, ours, raw, "aim", unit=unit, gate=gate)


def recorded(tmp_path, **ratios):
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps({"rows": [{"key": key, "ratio": ratio}
                                         for key, ratio in ratios.items()]}))
    return path


def test_a_ratio_more_than_twice_worse_than_recorded_fails_the_check(tmp_path):
    path = recorded(tmp_path, fast=1.0, slow=1.0, rate=1.0)
    rows = [row("fast", [1.9], [1.0]), row("slow", [2.1], [1.0]),
            row("rate", [40.0], [100.0], unit="tok/s")]  # raw/ours = 2.5: worse
    assert check_regressions(rows, path) == ["slow", "rate"]


def test_ungated_and_unrecorded_rows_are_not_checked(tmp_path):
    path = recorded(tmp_path, noisy=0.001)
    rows = [row("noisy", [5.0], [1.0], gate=False), row("new", [50.0], [1.0]),
            row("absolute", [9.0], None)]
    assert check_regressions(rows, path) == []


def test_the_table_judges_each_target_on_its_own_statistic():
    by_key = {target.key: target for target in TARGETS}
    answers = row("chat_answer", [100.0, 100.0, 1000.0], None)
    assert target_value(by_key["chat_answer"], answers) == pytest.approx(400.0)  # avg
    api = row("api_while_chatting", [1.0] * 18 + [100.0] * 2, None)
    assert target_value(by_key["api_while_chatting"], api) > 50  # p95, not the median
    machine = {"cpu": "cpu", "cores": 2, "system": "Linux", "python": "3.11",
               "sqlite_version": "3", "driver": "d", "sqlite_vec_version": "v0"}
    facts = {"sentence_transformers": "x", "embedder": "OnnxEmbedder", "import_seconds": 1.0,
             "load_seconds": 1.0}
    table = render([answers, api], machine, facts)
    assert "| 400 ms (avg) | met |" in table
    assert "(p95) | missed |" in table
    assert "not measured in this run" in table
