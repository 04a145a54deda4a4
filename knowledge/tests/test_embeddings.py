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
    session = RecordingSession(model._single)
    model._single = session  # type: ignore[assignment]
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


def test_one_text_runs_on_one_thread_that_does_not_spin_and_batches_on_the_pool() -> None:
    """A question is embedded on a one-thread session without spinning (a spinning pool kept both cores busy after
    every question); a batch uses the configured threads. Same vectors either way."""
    model = MiniLMEmbedder(threads=2, batch_size=8)
    single, batched = RecordingSession(model._single), RecordingSession(model._new_session(threads=2, spinning=True))
    model._single, model._batched = single, batched  # type: ignore[assignment]

    one = model.embed([SHORT[0]])
    many = model.embed(SHORT)

    assert [shape[0] for shape in single.shapes] == [1] and [shape[0] for shape in batched.shapes] == [3]
    assert np.allclose(one[0], many[0], atol=1e-5)
    options = MiniLMEmbedder(threads=2, batch_size=8)._single.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
