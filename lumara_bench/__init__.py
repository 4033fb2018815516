"""Lumara's benchmarks and quality evaluation: beside the product, never imported by it.

`python -m lumara_bench` measures the hot paths beside the raw libraries (bench.py);
`--eval` measures answer quality (evaluation.py, pair_eval.py, intent_eval.py,
chat_eval.py)."""

from pathlib import Path

# The checkout the benchmark measures: it starts `app.py` from here and writes docs/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
