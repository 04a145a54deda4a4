"""One question's embedding: latency and the CPU it costs, by ONNX Runtime thread count and spinning.

    .venv/bin/python bench/embedding_threads.py [--questions 50] [--pause-ms 50]

Each configuration embeds the same short question ``--questions`` times with a pause between (as between turns)
and prints the median and p90 latency and the CPU time the process used per question. A spinning thread pool keeps
its threads busy after each run: cheap latency, costly for everything else on the machine (docs/benchmarks.md,
"Chat latency"). The session options are those MiniLMEmbedder uses.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUESTION = "How much does express delivery cost in the EU?"
CONFIGURATIONS = ((1, False), (1, True), (2, False), (2, True))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--pause-ms", type=float, default=50.0)
    args = parser.parse_args(argv)

    from knowledge.embeddings import MiniLMEmbedder

    model = MiniLMEmbedder(threads=1, batch_size=1)
    token_ids = [encoding.ids for encoding in model._tokenizer.encode_batch([QUESTION])]
    print(f"{'threads':>7} {'spinning':>8} {'p50 ms':>7} {'p90 ms':>7} {'CPU ms / question':>18}")
    for threads, spinning in CONFIGURATIONS:
        session = model._new_session(threads=threads, spinning=spinning)
        for _ in range(5):
            model._embed_batch(session, token_ids)
        latencies: list[float] = []
        cpu_before = _cpu_seconds()
        for _ in range(args.questions):
            started = time.perf_counter()
            vector = model._embed_batch(session, token_ids)
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(args.pause_ms / 1000)
        cpu = (_cpu_seconds() - cpu_before) * 1000 / args.questions
        assert np.isfinite(vector).all()
        p90 = sorted(latencies)[int(len(latencies) * 0.9)]
        p50 = statistics.median(latencies)
        print(f"{threads:>7} {'yes' if spinning else 'no':>8} {p50:>7.2f} {p90:>7.2f} {cpu:>18.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
