"""The ONNX Runtime embedder: sentence-transformers' vectors, a one-time export kept in the
data folder, a fallback when that cannot work, and no torch in the server process."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lumara_web.inference import onnx_embedder, onnx_export
from lumara_web.inference.bundled import EMBEDDING_MODEL_ID, embedding_model_path
from lumara_web.inference.embeddings import SentenceTransformerEmbedder
from lumara_web.inference.onnx_embedder import (
    OnnxEmbedder,
    OnnxUnavailable,
    ensure_export,
    load_embedder,
    read_layout,
    run_export,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NAME = "all-MiniLM-L6-v2"
# The kind of text Lumara embeds: memories, questions, and a few awkward inputs.
TEXTS = [
    "My sister Ana lives in Lisbon with her two cats.",
    "Ana, my sister, is living in Lisbon.",
    "I am allergic to penicillin; it gave me a rash in 2019.",
    "To make cold brew I steep 100 g of coarse coffee in 1 litre of water for 16 hours.",
    "My passport expires in March 2028.",
    "The spare key is with the neighbour at number 12.",
    "Coffee after 3 pm ruins my sleep.",
    "I prefer aisle seats on long flights.",
    "What do you remember about my sister?",
    "Where did I put the spare key?",
    "Ich wohne seit 2015 in München.",
    "Ünïcødé — emoji 🙂 and 中文 text.",
    "a",
    "",
    "   ",
    "The quarterly report is due on the 3rd; remind Bob (bob@example.com) at 09:30!",
    " ".join(["I keep a list of every book I read, with a short note on each."] * 40),
]


@pytest.fixture(scope="module")
def model_dir():
    return embedding_model_path()


@pytest.fixture(scope="module")
def exported(embedding_cache_dir, model_dir):
    """One real export (a child process, ~8 s) shared by the session: the graph's path."""
    return ensure_export(model_dir, embedding_cache_dir, NAME)


@pytest.fixture(scope="module")
def onnx(exported, model_dir):
    return OnnxEmbedder.load(exported, model_dir, EMBEDDING_MODEL_ID)


@pytest.fixture(scope="module")
def reference():
    return SentenceTransformerEmbedder.load()


def test_vectors_match_sentence_transformers(onnx, reference):
    vectors = onnx.embed(TEXTS)
    expected = reference.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    cosines = (vectors * expected).sum(axis=1)
    assert cosines.min() >= 0.9999, dict(zip(TEXTS, cosines.round(6)))


def test_same_model_id_as_sentence_transformers(onnx, reference):
    # Stored vectors and the persistent cache are keyed by this id: see load_embedder.
    assert onnx.model_id == reference.model_id == EMBEDDING_MODEL_ID
    assert onnx.dimensions == reference.dimensions == 384


def test_rows_follow_input_order_across_runs(onnx):
    texts = TEXTS[::-1] + ["short", "a somewhat longer text about tea", "x " * 100]
    small_runs = OnnxEmbedder(onnx.session, onnx.tokenizer, onnx.model_id, batch_size=3,
                              max_batch_tokens=64)
    together = small_runs.embed(texts)
    one_by_one = np.stack([onnx.embed([text])[0] for text in texts])
    np.testing.assert_allclose(together, one_by_one, atol=2e-5)


def test_runs_cap_texts_and_padded_tokens(onnx):
    encodings = onnx.tokenizer.encode_batch([" ".join(["word"] * n) for n in range(1, 200, 7)])
    capped = OnnxEmbedder(onnx.session, onnx.tokenizer, onnx.model_id, batch_size=4,
                          max_batch_tokens=256)
    runs = list(capped._runs(encodings))
    assert sorted(index for run in runs for index in run) == list(range(len(encodings)))
    for run in runs:
        lengths = [len(encodings[index].ids) for index in run]
        assert lengths == sorted(lengths)
        assert len(run) <= 4
        assert len(run) == 1 or len(run) * max(lengths) <= 256


def test_empty_input_gives_no_rows(onnx):
    vectors = onnx.embed([])
    assert vectors.shape == (0, 384) and vectors.dtype == np.float32


def test_long_text_is_truncated_at_max_seq_length(onnx, model_dir):
    assert read_layout(model_dir)["max_seq_length"] == 256
    long = " ".join(f"word{index}" for index in range(400))
    assert len(onnx.tokenizer.encode(long).ids) == 256
    longer = long + " and a different ending that lies past the 256th token"
    first, second = onnx.embed([long, longer])
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_threads_never_spin(onnx):
    # ONNX Runtime's idle threads would otherwise spin on the cores llama.cpp decodes on.
    options = onnx.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"


def test_export_folder_is_complete_and_reused(exported, model_dir, monkeypatch):
    folder = exported.parent
    assert sorted(path.name for path in folder.iterdir()) == [onnx_export.GRAPH,
                                                               onnx_export.WEIGHTS]
    # Nothing left of the temporary folder it was built in.
    assert [path.name for path in folder.parent.iterdir()] == [folder.name]

    def must_not_export(model_dir, target):
        raise AssertionError("exported again")

    assert ensure_export(model_dir, folder.parent, NAME, must_not_export) == exported
    embedder = load_embedder(None, 16, folder.parent, export=must_not_export)
    assert isinstance(embedder, OnnxEmbedder) and embedder.batch_size == 16


def test_a_changed_model_gets_a_new_export_folder(tmp_path, model_dir):
    copy = tmp_path / "model"
    copy.mkdir()
    for name in ("config.json", "model.safetensors"):
        (copy / name).symlink_to(model_dir / name)
    original = onnx_embedder.export_folder_for(copy, tmp_path, NAME)
    (copy / "config.json").unlink()
    (copy / "config.json").write_text(
        (model_dir / "config.json").read_text().replace('"hidden_dropout_prob": 0.1',
                                                        '"hidden_dropout_prob": 0.2'))
    assert onnx_embedder.export_folder_for(copy, tmp_path, NAME) != original


def test_a_failed_export_leaves_nothing_behind(tmp_path, model_dir, monkeypatch):
    def disagree(*args):
        raise RuntimeError("the exported graph disagrees with torch")

    monkeypatch.setattr(onnx_export, "_check", disagree)
    target = tmp_path / "models" / f"{NAME}-test"
    with pytest.raises(RuntimeError, match="disagrees"):
        onnx_export.export(model_dir, target)
    assert list((tmp_path / "models").iterdir()) == []


def test_export_program_reports_its_failure(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(OnnxUnavailable, match="export failed"):
        run_export(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_falls_back_to_sentence_transformers_when_export_fails(tmp_path, caplog):
    def broken(model_dir, target):
        raise OnnxUnavailable("the ONNX export failed (exit 1): no space left")

    with caplog.at_level(logging.WARNING, logger="lumara_web.inference.onnx_embedder"):
        embedder = load_embedder(None, 64, tmp_path / "models", export=broken)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.model_id == EMBEDDING_MODEL_ID
    assert "no space left" in caplog.text and "sentence-transformers" in caplog.text
    assert embedder.embed(["still works"]).shape == (1, 384)


def test_falls_back_when_onnxruntime_is_missing(exported, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with caplog.at_level(logging.WARNING, logger="lumara_web.inference.onnx_embedder"):
        embedder = load_embedder(None, 64, exported.parent.parent)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert "onnxruntime is not installed" in caplog.text


def test_unsupported_module_pipelines_are_refused(tmp_path, model_dir):
    for name in ("tokenizer.json", "sentence_bert_config.json", "1_Pooling"):
        (tmp_path / name).symlink_to(model_dir / name)
    modules = json.loads((model_dir / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense",
                       "type": "sentence_transformers.models.Dense"})
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(OnnxUnavailable, match="Dense"):
        read_layout(tmp_path)


SERVER_SCRIPT = """
import json, sys
from lumara_web import create_app
from tests.fakes import FakeEngine

app = create_app({"data_dir": sys.argv[1], "engine": FakeEngine()})
embeddings = app.extensions["lumara"].embeddings
embeddings.model.settle(120)
vector = embeddings.embed("Where does Ana live?")
print(json.dumps({"state": embeddings.state, "error": embeddings.model.error,
                  "embedder": type(embeddings.model.value).__name__,
                  "norm": float((vector ** 2).sum()),
                  "heavy": sorted(name for name in ("torch", "transformers",
                                                    "sentence_transformers")
                                  if name in sys.modules)}))
"""


def test_the_server_process_never_imports_torch(tmp_path, exported):
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    (models / exported.parent.name).symlink_to(exported.parent)  # as a previous start left it
    result = subprocess.run([sys.executable, "-c", SERVER_SCRIPT, str(tmp_path / "data")],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["state"] == "ready", report["error"]
    assert report["embedder"] == "OnnxEmbedder"
    assert report["norm"] == pytest.approx(1.0, rel=1e-5)
    assert report["heavy"] == []
