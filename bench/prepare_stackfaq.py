"""Write StackFAQ as an `eval_retrieval` corpus and DEV/TEST query files, outside the repository.

    python bench/prepare_stackfaq.py --xml /work/shared/eval/stackfaq/data/StackFAQ/stackExchange-FAQ.xml \
        --out /tmp/steward-bench/stackfaq

Writes OUT/corpus/stackfaq_NNN.json (one per thread: title = the original question, content = the question and its
answers, one paragraph each), OUT/dev.jsonl and OUT/test.jsonl (``{"query", "relevant": [thread id]}``).
The split is the fixed one of /work/shared/eval/README.md: within each thread, the human paraphrases (placeholder
"*" entries dropped) at even 0-based positions are DEV, those at odd positions TEST; the KB is all 125 threads.
StackFAQ is for internal evaluation only (its SOURCE.md): nothing of it is written inside the repository.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
_SPACES = re.compile(r"\s+")


def _clean(text: str | None) -> str:
    return _SPACES.sub(" ", text or "").strip()


def threads(xml_path: Path) -> list[dict[str, object]]:
    """Return each thread as {id, question, answers, paraphrases} in file order."""
    root = ET.parse(xml_path).getroot()
    out = []
    for index, pair in enumerate(root.iter("qapair"), start=1):
        paraphrases = [_clean(e.text) for e in pair.findall("rephr")]
        out.append(
            {
                "id": f"stackfaq_{index:03d}",
                "question": _clean(pair.findtext("question")),
                "answers": [_clean(e.text) for e in pair.findall("answer") if _clean(e.text)],
                "paraphrases": [p for p in paraphrases if p and p != "*"],
            }
        )
    return out


def write(xml_path: Path, out: Path) -> dict[str, int]:
    if out.resolve().is_relative_to(REPOSITORY) and not out.resolve().is_relative_to(REPOSITORY / "var"):
        raise SystemExit(f"{out} is inside the repository: StackFAQ text must stay out of it (use /tmp or var/).")
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    counts = {"documents": 0, "dev": 0, "test": 0}
    with open(out / "dev.jsonl", "w") as dev, open(out / "test.jsonl", "w") as test:
        for thread in threads(xml_path):
            document = {
                "id": thread["id"],
                "title": thread["question"],
                "content": "\n\n".join([thread["question"], *thread["answers"]]),  # type: ignore[list-item]
            }
            (corpus / f"{thread['id']}.json").write_text(json.dumps(document, ensure_ascii=False))
            counts["documents"] += 1
            for position, paraphrase in enumerate(thread["paraphrases"]):  # type: ignore[arg-type]
                handle, split = (dev, "dev") if position % 2 == 0 else (test, "test")
                handle.write(json.dumps({"query": paraphrase, "relevant": [thread["id"]]}, ensure_ascii=False) + "\n")
                counts[split] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xml", type=Path, required=True, help="stackExchange-FAQ.xml")
    parser.add_argument("--out", type=Path, required=True, help="output directory (outside the repository)")
    args = parser.parse_args(argv)
    counts = write(args.xml, args.out)
    print(
        f"{counts['documents']} documents in {args.out / 'corpus'}; "
        f"{counts['dev']} DEV queries in {args.out / 'dev.jsonl'}; {counts['test']} TEST queries in "
        f"{args.out / 'test.jsonl'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
