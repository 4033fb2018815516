"""Export a sentence-transformers model folder's transformer to an ONNX graph.

Runs as a program of its own, started by onnx_embedder the first time a data folder needs the
graph: torch and transformers (~440 MB of memory) live only in that short-lived process, never
in the server. It imports nothing from lumara_web, so it runs by file path:

    python onnx_export.py MODEL_DIR TARGET_DIR

TARGET_DIR receives model.onnx (the graph, ~100 KB) and model.onnx.data (the weights, kept
apart so ONNX Runtime memory-maps them: the word-embedding table, half of MiniLM's 90 MB, then
costs memory only for the rows real text touches). The graph maps (input_ids, attention_mask[,
token_type_ids]) → last_hidden_state; the embedder pools and normalizes. The folder is built
under a temporary name and renamed into place only after the graph, run in ONNX Runtime on a
padded batch of another shape than the traced one, matched torch: a trace that baked in a shape
or skipped the attention mask never reaches the cache, and a reader never sees half a folder.
"""

from __future__ import annotations

import inspect
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

# 17: the first opset with a LayerNormalization operator, so each of BERT's layer norms is
# exported as one node rather than a chain of reductions; BERT needs nothing newer.
OPSET = 17
# Pooled vectors of torch and of the exported graph must agree at least this well: the
# embedder reports the sentence-transformers model id, so its vectors must be interchangeable.
MIN_COSINE = 0.9999
GRAPH = "model.onnx"
WEIGHTS = "model.onnx.data"


def export(model_dir: Path, target: Path) -> None:
    """Build the `target` folder atomically: a temporary sibling, checked, then renamed."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    warnings.filterwarnings("ignore")  # tracer and deprecation chatter: not ours to act on
    import onnx
    import torch
    from transformers import AutoModel

    # Eager attention: the mask becomes plain MatMul/Add/Softmax ops in the graph, the form
    # that _check verifies on a batch padded unlike the traced one.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager")
    model.eval()
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(model.forward).parameters:
        names.append("token_type_ids")

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs))).last_hidden_state

    wrapper = LastHiddenState().eval()
    # A padded sample (the second row is shorter), so the trace keeps the masking path.
    sample = _batch(torch, names, [[101, 7592, 2088, 2003, 102], [101, 7592, 102]])
    dynamic = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        traced = building / "traced.onnx"
        with torch.no_grad():
            # dynamo=False: the TorchScript exporter needs only the `onnx` package; the
            # dynamo one needs onnxscript too.
            torch.onnx.export(wrapper, sample, str(traced), input_names=names,
                              output_names=["last_hidden_state"], dynamic_axes=dynamic,
                              opset_version=OPSET, dynamo=False)
        onnx.save_model(onnx.load(str(traced)), str(building / GRAPH),
                        save_as_external_data=True, all_tensors_to_one_file=True,
                        location=WEIGHTS, size_threshold=1024)
        traced.unlink()
        _check(torch, wrapper, names, building / GRAPH)
        for name in (GRAPH, WEIGHTS):
            with open(building / name, "rb") as written:
                os.fsync(written.fileno())
        try:
            os.rename(building, target)
        except OSError:
            if not (target / GRAPH).is_file():
                raise
            # Another process finished the same export first: its folder is as good.
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _batch(torch, names: list[str], rows: list[list[int]]) -> tuple:
    width = max(len(row) for row in rows)
    ids = torch.tensor([row + [0] * (width - len(row)) for row in rows], dtype=torch.long)
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows],
                        dtype=torch.long)
    return (ids, mask, torch.zeros_like(ids))[:len(names)]


def _check(torch, wrapper, names: list[str], path: Path) -> None:
    """Run the graph on a batch shaped unlike the traced sample; compare pooled vectors."""
    import numpy as np
    import onnxruntime

    rows = [[101, 2026, 2905, 3601, 3268, 1999, 7064, 1012, 102], [101, 1045, 2066, 102],
            [101, 4931, 102]]
    inputs = _batch(torch, names, rows)
    with torch.no_grad():
        expected = wrapper(*inputs).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {name: tensor.numpy() for name, tensor in zip(names, inputs)})[0]
    mask = inputs[1].numpy()[:, :, None].astype(np.float32)

    def pooled(hidden: np.ndarray) -> np.ndarray:
        vectors = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    cosine = (pooled(expected) * pooled(actual)).sum(axis=1).min()
    if cosine < MIN_COSINE:
        raise RuntimeError(f"the exported graph disagrees with torch (cosine {cosine:.6f} < "
                           f"{MIN_COSINE})")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python onnx_export.py MODEL_DIR TARGET_DIR", file=sys.stderr)
        return 2
    export(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
