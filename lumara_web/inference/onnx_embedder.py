"""The embedding model on ONNX Runtime: sentence-transformers' vectors without torch.

torch, transformers and sentence-transformers cost the server ~420 MB of memory before the
model's own weights; ONNX Runtime and the `tokenizers` package together cost ~25 MB. The ONNX graph is exported once per data folder, by onnx_export.py in a process
of its own (the only place torch is imported), and kept in `<data_dir>/models`; later starts
load the file. Where that cannot work, `load_embedder` falls back to sentence-transformers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .bundled import EMBEDDING_MODEL_ID, embedding_model_path
from .engine import machine_cores
from .heap import release_freed_memory
from .onnx_export import GRAPH  # a stdlib-only import: torch loads inside its export()

log = logging.getLogger(__name__)

# Bump when onnx_export.py changes the graph it writes: the file name changes with it, so an
# old data folder exports again instead of loading a graph the embedder no longer expects.
EXPORT_FORMAT = "1"
EXPORT_SCRIPT = Path(__file__).with_name("onnx_export.py")
# Loading the weights and tracing takes ~8 s on 2 idle cores; five minutes allows for a
# machine busy with other work without letting a hung export block the embedder forever.
EXPORT_TIMEOUT_SECONDS = 300
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Padded tokens per model run. Memory for attention grows with texts × length², so a cap on
# texts × length bounds it: 64 texts of 256 tokens in one run took ~400 MB more memory and ran
# 2-3x slower than runs of 512 tokens, which were as fast as any for short texts too.
MAX_BATCH_TOKENS = 512
# The sentence-transformers modules this embedder reproduces; any other (Dense, …) → fallback.
TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"


class OnnxUnavailable(Exception):
    """This model or machine cannot use the ONNX path; sentence-transformers can."""


class OnnxEmbedder:
    """Tokenize (`tokenizers`), run the transformer (ONNX Runtime), pool with the attention
    mask, L2-normalize: sentence-transformers' `encode(normalize_embeddings=True)`."""

    def __init__(self, session: Any, tokenizer: Any, model_id: str, *, pooling: str = "mean",
                 lowercase: bool = False, batch_size: int = 64,
                 max_batch_tokens: int = MAX_BATCH_TOKENS):
        self.session = session
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.pooling = pooling
        self.lowercase = lowercase
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.input_names = [item.name for item in session.get_inputs()]
        self.dimensions = int(session.get_outputs()[0].shape[-1])

    @classmethod
    def load(cls, onnx_path: str | Path, model_dir: str | Path, model_id: str,
             batch_size: int = 64, threads: int | None = None) -> "OnnxEmbedder":
        """Open the graph at `onnx_path` with the tokenizer and pooling of `model_dir`."""
        model_dir = Path(model_dir)
        layout = read_layout(model_dir)
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise OnnxUnavailable(f"{exc.name} is not installed (pip install -r "
                                  "requirements.txt)") from None
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=layout["max_seq_length"])
        tokenizer.no_padding()  # each batch is padded to its own longest text, below
        session = open_session(onnxruntime, onnx_path, threads or machine_cores())
        release_freed_memory()  # graph optimization's scratch: ~30 MB
        return cls(session, tokenizer, model_id, pooling=layout["pooling"],
                   lowercase=layout["lowercase"], batch_size=batch_size)

    def embed(self, texts: list[str]) -> np.ndarray:
        texts = [text.lower() for text in texts] if self.lowercase else list(texts)
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return vectors
        encodings = self.tokenizer.encode_batch(texts)
        for chosen in self._runs(encodings):
            vectors[chosen] = self._embed_batch([encodings[index] for index in chosen])
        release_freed_memory()
        return vectors

    def _runs(self, encodings: list[Any]) -> Iterator[list[int]]:
        """Indexes of the texts for each model run: similar lengths together (little
        padding), at most batch_size texts and max_batch_tokens padded tokens a run."""
        order = sorted(range(len(encodings)), key=lambda index: len(encodings[index].ids))
        run: list[int] = []
        for index in order:
            width = len(encodings[index].ids)  # the longest so far: the order is ascending
            if run and (len(run) == self.batch_size
                        or (len(run) + 1) * width > self.max_batch_tokens):
                yield run
                run = []
            run.append(index)
        if run:
            yield run

    def _embed_batch(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(encoding.ids) for encoding in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            ids[row, :length] = encoding.ids
            mask[row, :length] = 1
            types[row, :length] = encoding.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.session.run(None, {name: feeds[name] for name in self.input_names})[0]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # mean over real tokens; the clip is sentence-transformers' own
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def open_session(onnxruntime: Any, onnx_path: str | Path, threads: int) -> Any:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # the graph runs sequentially: no inter-op pool needed
    # Idle ORT threads otherwise spin for a while after each run, on the same cores that
    # llama.cpp decodes on right after an embedding call.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # No arena: it would keep the peak of the largest batch ever seen (a batch of 64
    # 256-token texts needs ~200 MB of attention scores) for the life of the server.
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3  # errors only: warnings about unused initializers are noise
    return onnxruntime.InferenceSession(str(onnx_path), sess_options=options,
                                        providers=["CPUExecutionProvider"])


def read_layout(model_dir: Path) -> dict:
    """What the sentence-transformers folder asks for after the transformer, if this module
    can reproduce it: transformer → pooling (mean or CLS) → optional normalize."""
    def read(name: str) -> Any:
        try:
            return json.loads((model_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise OnnxUnavailable(f"cannot read {model_dir / name}: {exc}") from None

    if not (model_dir / "tokenizer.json").is_file():
        raise OnnxUnavailable(f"{model_dir} has no tokenizer.json")
    modules = read("modules.json")
    kinds = [module["type"] for module in modules]
    if kinds[:2] != [TRANSFORMER, POOLING] or any(kind != NORMALIZE for kind in kinds[2:]):
        raise OnnxUnavailable(f"unsupported module pipeline {kinds}")
    pooling = read(f"{modules[1]['path']}/config.json")
    modes = [key for key, value in pooling.items() if key.startswith("pooling_mode") and value]
    if modes not in (["pooling_mode_mean_tokens"], ["pooling_mode_cls_token"]):
        raise OnnxUnavailable(f"unsupported pooling {modes}")
    config = read("sentence_bert_config.json")
    return {"max_seq_length": int(config["max_seq_length"]),
            "lowercase": bool(config.get("do_lower_case")),
            "pooling": "cls" if modes == ["pooling_mode_cls_token"] else "mean"}


def weights_file(model_dir: Path) -> Path:
    for name in WEIGHT_FILES:
        if (model_dir / name).is_file():
            return model_dir / name
    raise OnnxUnavailable(f"{model_dir} holds none of {', '.join(WEIGHT_FILES)}")


def export_folder_for(model_dir: Path, cache_dir: Path, name: str) -> Path:
    """The cache folder for this model's weights: named by a hash of the weights and config
    (~80 ms for MiniLM's 90 MB), so a changed model exports again and a reinstalled identical
    one does not."""
    digest = hashlib.sha256(f"lumara-onnx-export {EXPORT_FORMAT}\n".encode())
    digest.update((model_dir / "config.json").read_bytes())
    with weights_file(model_dir).open("rb") as weights:
        digest.update(hashlib.file_digest(weights, "sha256").digest())
    return cache_dir / f"{name}-{digest.hexdigest()[:16]}"


def run_export(model_dir: Path, target: Path) -> None:
    """Export in a child process: torch never enters this one."""
    command = [sys.executable, str(EXPORT_SCRIPT), str(model_dir), str(target)]
    try:
        result = subprocess.run(command, capture_output=True, text=True,
                                timeout=EXPORT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise OnnxUnavailable(f"the ONNX export took over {EXPORT_TIMEOUT_SECONDS} s") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise OnnxUnavailable(f"the ONNX export failed (exit {result.returncode}): "
                              f"{lines[-1] if lines else 'no output'}")


def ensure_export(model_dir: Path, cache_dir: Path, name: str,
                  export: Callable[[Path, Path], None] = run_export) -> Path:
    """The graph file of this model's export, made first if this data folder has none."""
    folder = export_folder_for(model_dir, cache_dir, name)
    graph = folder / GRAPH
    if graph.is_file():
        return graph
    cache_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log.info("exporting the embedding model to ONNX, once per data folder, into %s", folder)
    export(model_dir, folder)
    if not graph.is_file():
        raise OnnxUnavailable(f"the ONNX export wrote no {GRAPH} in {folder}")
    log.info("ONNX export done in %.1f s", time.perf_counter() - started)
    return graph


def embedding_model_id(configured_path: str | Path | None) -> str:
    """The id vectors are stored under: the bundled model's name, or a folder's full path."""
    if not configured_path:
        return EMBEDDING_MODEL_ID
    return str(embedding_model_path(configured_path).resolve())


def load_embedder(configured_path: str | Path | None, batch_size: int, cache_dir: str | Path,
                  export: Callable[[Path, Path], None] = run_export) -> Any:
    """The ONNX embedder; sentence-transformers (torch, ~400 MB more memory) if the ONNX
    path cannot be had here. A missing model is an error either way: ModelMissing is raised
    before any attempt."""
    model_dir = embedding_model_path(configured_path)
    # Same id as SentenceTransformerEmbedder.load for the same folder: the ONNX vectors match
    # sentence-transformers' to cosine ≥ 0.9999 (onnx_export checks each export, and
    # tests/test_onnx_embedder.py checks real texts), so vectors stored or cached under this
    # id by either backend stay valid and switching backends re-embeds nothing.
    model_id = embedding_model_id(configured_path)
    try:
        onnx_path = ensure_export(model_dir, Path(cache_dir), Path(model_id).name, export)
        return OnnxEmbedder.load(onnx_path, model_dir, model_id, batch_size)
    except Exception as exc:  # any ONNX trouble: the app must still embed
        log.warning("ONNX embedder unavailable (%s); using sentence-transformers instead, "
                    "which needs ~400 MB more memory", exc)
    from .embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder.load(configured_path, batch_size)
