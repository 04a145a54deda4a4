"""The embedded model (all-MiniLM-L6-v2, int8 ONNX): batching by length, order, and agreement with one text alone."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.embeddings import MiniLMEmbedder

SHORT = ["Refunds take five days.", "Descale every three months.", "Invoices arrive monthly."]
LONG = [
    "If your grinder arrived damaged, send us a photo within seven days of delivery and we ship a replacement at no "
    "cost, or refund the order in full if you would rather not wait for the replacement to arrive.",
    "Business accounts may pay by invoice: the invoice is emailed on the first day of each month, is due within "
    "thirty days, and lists every order placed in the month before with its delivery address and its tax.",
]


class RecordingSession:
    """The real ONNX session, noting the shape of each batch it runs."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.shapes: list[tuple[int, int]] = []

    def run(self, outputs: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.shapes.append(feed["input_ids"].shape)
        return self.real.run(outputs, feed)  # type: ignore[attr-defined]


@pytest.fixture
def model() -> MiniLMEmbedder:
    return MiniLMEmbedder(threads=1, batch_size=3)


def test_texts_are_batched_with_texts_of_similar_length(model: MiniLMEmbedder) -> None:
    session = RecordingSession(model._session)
    model._session = session  # type: ignore[assignment]
    mixed = [LONG[0], SHORT[0], LONG[1], SHORT[1], SHORT[2]]

    model.embed(mixed)

    (short_batch, long_batch) = session.shapes
    assert short_batch[0] == 3 and long_batch[0] == 2  # the three short texts together, then the two long ones
    assert short_batch[1] < 15 < long_batch[1]  # so the short ones are not padded to the long ones' length


def test_each_row_is_its_own_texts_vector_in_the_callers_order(model: MiniLMEmbedder) -> None:
    mixed = [LONG[0], SHORT[0], LONG[1], SHORT[1], SHORT[2]]

    together = model.embed(mixed)

    alone = np.vstack([model.embed([text]) for text in mixed])
    assert together.shape == (5, 384) and together.dtype == np.float32
    assert np.allclose(together, alone, atol=1e-5)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-4)
    assert float(together[1] @ together[3]) < 0.99  # different texts, different vectors


def test_a_text_over_the_token_limit_is_cut_not_refused(model: MiniLMEmbedder) -> None:
    vector = model.embed([" ".join(["espresso"] * 1000)])
    assert vector.shape == (1, 384) and np.isfinite(vector).all()
