"""Knowledge answers made only of quotes: the sentences (list items, table rows) of the retrieved passages that are
most similar to the question, in their original order, each with its citation.

Nothing is paraphrased or invented. A passage is cut into units: prose sentences, list items (split into sentences)
and table rows (shown under their header row). Each unit is embedded with its document title and section heading
for context, scored by cosine similarity to the question (plus a small preference for the better-ranked passage),
and the best one and up to two more close to it are quoted. Each quoted unit is a verbatim substring of its chunk's
text, so an answer can always be checked against its sources.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

SENTENCE, ITEM, ROW = "sentence", "item", "row"

MAX_HITS = 3  # documents considered: the best one and those close behind it
PASSAGE_MARGIN = 0.12  # a document whose retrieval score is this far below the best one is not quoted
MAX_DOCUMENT_CHUNKS = 6  # of the best document, its chunks nearest the hit
PASSAGE_WEIGHT = 0.5  # a unit's score gains this times its passage's retrieval score minus the best passage's
MAX_UNITS = 3
UNIT_MARGIN = 0.08  # further units must score within this of the best unit
UNIT_FLOOR = 0.35  # the best unit must be at least this similar to the question, or the agent does not know
MAX_STEPS = 10  # a numbered list of this many steps or fewer is quoted whole when one of its steps is the best unit
MIN_WORDS = 4
MAX_UNITS_PER_PASSAGE = 40
CACHE_SIZE = 512  # passages whose units and embeddings are kept per process

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“‘'(\[]?[A-Z0-9£€$])")
_LIST_MARKER = re.compile(r"^(?:[-*•]|(?P<number>\d{1,2})[.)])\s+")
# A sentence that only points elsewhere ('See "Changing your grind".') answers nothing by itself.
_POINTER = re.compile(r"^(?:see|read)\s+[\"“‘']", re.IGNORECASE)
_TERMINAL = re.compile(r"[.!?:;)\]\"”’]$")


@dataclass(frozen=True)
class Unit:
    position: int
    text: str  # what is quoted: a verbatim substring of the passage
    kind: str
    context: str  # what is embedded: title and heading, then the text (a row with its header)
    header: str = ""  # a table row's header row (verbatim)
    block: int = 0  # the paragraph, list or table it belongs to
    step: int = 0  # the step number of an item of a numbered list (a procedure), else 0
    line: int = 0  # the line of its block (the sentences of one list item share it)


@dataclass(frozen=True)
class Passage:
    """A chunk that may be quoted, with the citation of its document and section."""

    chunk_id: int
    text: str
    heading_path: str
    score: float  # its document's retrieval score
    citation: dict[str, Any]

    @classmethod
    def from_hit(cls, hit: Any) -> Passage:
        return cls(hit.chunk_id, hit.text, hit.heading_path, hit.score, dict(hit.citation))

    @property
    def title(self) -> str:
        return str(self.citation.get("document_title", ""))


def select_passages(hits: Sequence[Any], document_chunks: Sequence[tuple[int, int, str, str]]) -> list[Passage]:
    """Return what may be quoted: the best document's chunks nearest its hit, in document order, then the best chunk of
    each next document whose score is close behind.

    Retrieval returns each document as its best chunk; the answer is often in a neighbouring one (a table just
    before the paragraph that matched best). ``document_chunks`` are the best document's (id, position, text,
    heading path) rows.
    """
    if not hits:
        return []
    top = hits[0]
    by_position = sorted(document_chunks, key=lambda row: row[1])
    index = next((i for i, row in enumerate(by_position) if row[0] == top.chunk_id), None)
    if index is None:
        passages = [Passage.from_hit(top)]
    else:
        low = max(0, min(index - MAX_DOCUMENT_CHUNKS // 2, len(by_position) - MAX_DOCUMENT_CHUNKS))
        window = by_position[low : low + MAX_DOCUMENT_CHUNKS]
        passages = [
            Passage(chunk_id, text, heading, top.score, {**top.citation, "section": heading})
            for chunk_id, _, text, heading in window
        ]
    for hit in hits[1:MAX_HITS]:
        if hit.score >= top.score - PASSAGE_MARGIN:
            passages.append(Passage.from_hit(hit))
    return passages


@dataclass
class Quote:
    passage: int  # index into the passages
    units: list[Unit] = field(default_factory=list)


@dataclass(frozen=True)
class Composition:
    text: str
    quotes: list[Quote]
    best_similarity: float


def _is_table(lines: list[str]) -> bool:
    return len(lines) >= 2 and all(" | " in line for line in lines)


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def passage_units(text: str, *, title: str, heading: str) -> list[Unit]:
    """Cut a passage into quotable units (pure)."""
    units: list[Unit] = []
    for block_index, block in enumerate(re.split(r"\n\s*\n", text)):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        subheading = ""
        # A table (the parser writes cells joined by " | ", the header row first), possibly under a heading line.
        if len(lines) >= 3 and " | " not in lines[0] and _is_table(lines[1:]):
            subheading, lines = lines[0], lines[1:]
        if _is_table(lines):
            header = lines[0]
            for row in lines[1:]:
                context = _context(title, heading, subheading, _row_as_text(header, row))
                units.append(Unit(len(units), row, ROW, context, header=header, block=block_index))
            continue
        for index, line in enumerate(lines):
            if index + 1 < len(lines) and not _TERMINAL.search(line) and len(line.split()) <= 12:
                subheading = line  # a section heading kept as the first line of a merged section
                continue
            marker = _LIST_MARKER.match(line)
            body = line[marker.end() :] if marker else line
            step = int(marker["number"]) if marker and marker["number"] else 0
            for sentence in _sentences(body):
                # Every sentence of a step is kept ("Press 2-cup."): a procedure is quoted whole or not at all.
                if (len(sentence.split()) < MIN_WORDS and not step) or _POINTER.match(sentence):
                    continue
                kind = ITEM if marker else SENTENCE
                context = _context(title, heading, subheading, sentence)
                units.append(Unit(len(units), sentence, kind, context, block=block_index, step=step, line=index))
    return units[:MAX_UNITS_PER_PASSAGE]


def _row_as_text(header: str, row: str) -> str:
    """Return a table row as "Header: cell." pairs, closer to how a question is worded than cells between bars."""
    names = [cell.strip() for cell in header.split("|")]
    cells = [cell.strip() for cell in row.split("|")]
    if len(names) != len(cells):
        return f"{header}\n{row}"
    return " ".join(f"{name}: {cell}." for name, cell in zip(names, cells, strict=True) if cell)


def _context(title: str, heading: str, subheading: str, text: str) -> str:
    lead = " › ".join(part for part in (title, heading, subheading) if part)
    return f"{lead}\n{text}" if lead else text


class UnitCache:
    """Units and unit embeddings of recently quoted passages, by chunk id and text (a re-indexed chunk is new)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], tuple[list[Unit], np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[list[Unit], np.ndarray] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], value: tuple[list[Unit], np.ndarray]) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_units_cache = UnitCache()


class SharedVectors(Protocol):
    """Unit vectors kept across processes (the embedded responder uses the Django cache): bytes by key."""

    def get_many(self, keys: list[str]) -> dict[str, bytes]: ...

    def set_many(self, values: dict[str, bytes]) -> None: ...


def units_key(model_id: str, units: Sequence[Unit]) -> str:
    """A key for the vectors of ``units`` under ``model_id``: what is embedded decides it, nothing else."""
    digest = hashlib.sha256("\x1e".join([model_id, *(unit.context for unit in units)]).encode()).hexdigest()
    return f"compose-units:{digest}"


def _embedded_units(
    passages: Sequence[Passage],
    embed: Callable[[list[str]], np.ndarray],
    model_id: str,
    dimensions: int,
    shared: SharedVectors | None = None,
) -> list[tuple[list[Unit], np.ndarray]]:
    """Each passage's units and their vectors: from this process's cache, else ``shared``, else embedded.

    Embedding a passage's units is most of a knowledge turn the first time it is quoted (a few hundred ms for a
    long chunk on two cores); ``shared`` makes that once per deployment instead of once per worker process. What
    is still missing is embedded in one batch.
    """
    found: list[tuple[list[Unit], np.ndarray] | None] = []
    missing: dict[int, tuple[tuple[Any, ...], list[Unit], str]] = {}
    for index, passage in enumerate(passages):
        local_key = (model_id, passage.chunk_id, hash(passage.text), passage.title, passage.heading_path)
        cached = _units_cache.get(local_key)
        found.append(cached)
        if cached is None:
            units = passage_units(passage.text, title=passage.title, heading=passage.heading_path)
            missing[index] = (local_key, units, units_key(model_id, units))
    if not missing:
        return found  # type: ignore[return-value]
    stored = shared.get_many([key for _, units, key in missing.values() if units]) if shared is not None else {}
    # A stored value must be float32 rows of ``dimensions``, one per unit; anything else is embedded again.
    usable = {
        key
        for _, units, key in missing.values()
        if units and isinstance(stored.get(key), bytes) and len(stored[key]) == len(units) * dimensions * 4
    }
    to_embed = [(index, units) for index, (_, units, key) in missing.items() if units and key not in usable]
    vectors = embed([unit.context for _, units in to_embed for unit in units]) if to_embed else None
    fresh: dict[str, bytes] = {}
    start = 0
    computed: dict[int, np.ndarray] = {}
    for index, units in to_embed:
        computed[index] = np.ascontiguousarray(vectors[start : start + len(units)], dtype=np.float32)  # type: ignore[index]
        start += len(units)
        fresh[missing[index][2]] = computed[index].tobytes()
    for index, (local_key, units, key) in missing.items():
        if not units:
            value = np.zeros((0, 1), dtype=np.float32)
        elif index in computed:
            value = computed[index]
        else:
            value = np.frombuffer(stored[key], dtype=np.float32).reshape(len(units), dimensions)
        found[index] = (units, value)
        _units_cache.put(local_key, (units, value))
    if fresh and shared is not None:
        shared.set_many(fresh)
    return found  # type: ignore[return-value]


def compose(
    question: np.ndarray,
    passages: Sequence[Passage],
    embed: Callable[[list[str]], np.ndarray],
    *,
    model_id: str = "",
    shared: SharedVectors | None = None,
) -> Composition | None:
    """Quote the units of ``passages`` (select_passages) closest to the embedded ``question``.

    Returns None when no unit reaches UNIT_FLOOR: the passages are about something else.
    """
    if not passages:
        return None
    best_passage = max(passage.score for passage in passages)
    scored: list[tuple[float, float, int, Unit]] = []  # (score, similarity, passage, unit)
    for index, (passage, (units, vectors)) in enumerate(
        zip(passages, _embedded_units(passages, embed, model_id, question.shape[0], shared), strict=True)
    ):
        if not units:
            continue
        similarities = vectors @ question
        for unit, similarity in zip(units, similarities, strict=True):
            score = float(similarity) + PASSAGE_WEIGHT * (passage.score - best_passage)
            scored.append((score, float(similarity), index, unit))
    if not scored:
        return None
    scored.sort(key=lambda item: -item[0])
    top_score, top_similarity, _, _ = scored[0]
    if top_similarity < UNIT_FLOOR:
        return None
    top_unit, top_passage = scored[0][3], scored[0][2]
    if top_unit.step:
        # A step of a procedure: the customer needs the whole procedure, in order, if it is short enough.
        steps = _procedure(scored, top_passage, top_unit.block)
        chosen = steps if steps else scored[:1]
    else:
        chosen = [item for item in scored[:MAX_UNITS] if item[0] >= top_score - UNIT_MARGIN and item[1] >= UNIT_FLOOR]
        # A step quoted beside the best sentence brings its whole procedure, never steps out of their list.
        for passage, block in dict.fromkeys((item[2], item[3].block) for item in chosen if item[3].step):
            steps = _procedure(scored, passage, block)
            chosen = [item for item in chosen if (item[2], item[3].block) != (passage, block)] + steps
    chosen.sort(key=lambda item: (item[2], item[3].position))
    quotes: list[Quote] = []
    for _, _, passage, unit in chosen:
        if not quotes or quotes[-1].passage != passage:
            quotes.append(Quote(passage))
        quotes[-1].units.append(unit)
    return Composition(text=render(quotes), quotes=quotes, best_similarity=top_similarity)


def _procedure(
    scored: list[tuple[float, float, int, Unit]], passage: int, block: int
) -> list[tuple[float, float, int, Unit]]:
    """Every unit of the numbered list ``block`` of ``passage``; empty when the list is longer than MAX_STEPS."""
    steps = [item for item in scored if item[2] == passage and item[3].block == block]
    return steps if len({item[3].step for item in steps}) <= MAX_STEPS else []


def render(quotes: Sequence[Quote]) -> str:
    """Lay the quoted units out: sentences of one paragraph run on, list items and table rows get their own lines."""
    lines: list[str] = []
    for quote in quotes:
        previous: Unit | None = None
        for unit in quote.units:
            if unit.kind == ROW:
                if previous is None or previous.kind != ROW or previous.header != unit.header:
                    lines.append(unit.header)
                lines.append(unit.text)
            elif unit.kind == ITEM:
                same_item = previous is not None and (previous.block, previous.line) == (unit.block, unit.line)
                if same_item and previous.kind == ITEM and lines:
                    lines[-1] = f"{lines[-1]} {unit.text}"
                else:
                    lines.append(f"{unit.step}. {unit.text}" if unit.step else f"- {unit.text}")
            elif previous is not None and previous.kind == SENTENCE and previous.block == unit.block and lines:
                lines[-1] = f"{lines[-1]} {unit.text}"
            else:
                lines.append(unit.text)
            previous = unit
    return "\n".join(lines)
