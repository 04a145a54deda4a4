"""Write tau2-bench banking_knowledge DEV/TEST query files for `eval_retrieval`, outside the repository.

    python bench/prepare_tau2_banking.py \
        --data /work/shared/eval/tau2-bench/data/tau2/domains/banking_knowledge --out /tmp/steward-bench/tau2-banking

The corpus is the dataset's own ``documents/`` folder (698 ``{"id", "title", "content"}`` files, already in the
format `eval_retrieval` reads): OUT/corpus is a symbolic link to it, nothing is copied. The queries are the tasks'
``user_scenario.instructions`` (the user simulator's brief: persona, need, constraints), with
``relevant = required_documents``; DEV = odd task numbers (task_001, task_003, …), TEST = even (the fixed split of
/work/shared/eval/README.md). ``--query-text core`` drops the role-play boilerplate instead: lines and sentences
that occur in at least three DEV tasks' instructions ("You are playing the role of a customer…"), counted on DEV
only so that TEST text never shapes the query.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
_PIECES = re.compile(r"(?<=[.!?])\s+|\n+")
BOILERPLATE_MIN_TASKS = 3


def task_number(task: dict) -> int:  # type: ignore[type-arg]
    return int(str(task["id"]).rsplit("_", 1)[-1])


def _pieces(text: str) -> list[str]:
    return [piece.strip() for piece in _PIECES.split(text) if piece.strip()]


def boilerplate(dev_tasks: list[dict]) -> set[str]:  # type: ignore[type-arg]
    """Return the pieces of instruction text shared by at least BOILERPLATE_MIN_TASKS DEV tasks."""
    counts: Counter[str] = Counter()
    for task in dev_tasks:
        counts.update(set(_pieces(task["user_scenario"]["instructions"])))
    return {piece for piece, n in counts.items() if n >= BOILERPLATE_MIN_TASKS}


def query_text(task: dict, mode: str, shared: set[str]) -> str:  # type: ignore[type-arg]
    instructions = task["user_scenario"]["instructions"]
    if mode == "instructions":
        return instructions.strip()
    return " ".join(piece for piece in _pieces(instructions) if piece not in shared)


def write(data: Path, out: Path, mode: str) -> dict[str, int]:
    if out.resolve().is_relative_to(REPOSITORY) and not out.resolve().is_relative_to(REPOSITORY / "var"):
        raise SystemExit(f"{out} is inside the repository: dataset text must stay out of it (use /tmp or var/).")
    tasks = json.loads((data / "tasks.json").read_text())
    dev_tasks = [t for t in tasks if task_number(t) % 2 == 1]
    shared = boilerplate(dev_tasks) if mode == "core" else set()
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus"
    if corpus.is_symlink() or corpus.exists():
        corpus.unlink()
    corpus.symlink_to((data / "documents").resolve(), target_is_directory=True)
    counts = {"dev": 0, "test": 0}
    with open(out / "dev.jsonl", "w") as dev, open(out / "test.jsonl", "w") as test:
        for task in tasks:
            split = "dev" if task_number(task) % 2 == 1 else "test"
            line = {"query": query_text(task, mode, shared), "relevant": task["required_documents"], "id": task["id"]}
            (dev if split == "dev" else test).write(json.dumps(line, ensure_ascii=False) + "\n")
            counts[split] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the banking_knowledge folder")
    parser.add_argument("--out", type=Path, required=True, help="output directory (outside the repository)")
    parser.add_argument("--query-text", choices=["instructions", "core"], default="instructions")
    args = parser.parse_args(argv)
    counts = write(args.data, args.out, args.query_text)
    print(
        f"corpus: {args.out / 'corpus'} -> {args.data / 'documents'}; {counts['dev']} DEV and {counts['test']} TEST "
        f"queries ({args.query_text}) in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
