"""Structure-aware chunking: sections become chunks of about ``max_words`` words, never across a section boundary.

Pure functions: sections in, chunk drafts out. Paragraphs are packed whole where they fit; a paragraph longer than a
chunk is cut at sentence ends, and a sentence longer than a chunk at word boundaries. Consecutive chunks of one
section share ``overlap_words`` words, so a fact split across the cut is still found whole in one of them. A section
shorter than ``min_words`` is merged with the sections that follow it under the same parent heading while the result
stays under ``max_words`` (FAQ entries of two lines each would otherwise be chunks too small to rank well).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from knowledge.parsers import Section

HEADING_SEPARATOR = " › "
HEADING_PATH_MAX = 1000  # Chunk.heading_path max_length
MAX_WORDS = 180
OVERLAP_WORDS = 30
MIN_WORDS = 40

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class ChunkDraft:
    position: int
    heading_path: list[str]
    text: str
    token_count: int

    @property
    def heading(self) -> str:
        return format_heading_path(self.heading_path)


def format_heading_path(path: list[str] | tuple[str, ...]) -> str:
    return HEADING_SEPARATOR.join(path)[:HEADING_PATH_MAX]


def word_count(text: str) -> int:
    return len(text.split())


def token_count(text: str) -> int:
    """Approximate model tokens: words and punctuation marks (WordPiece splits rare words further)."""
    return len(_TOKEN.findall(text))


def merge_small_sections(sections: list[Section], *, min_words: int, max_words: int) -> list[Section]:
    """Merge each section under ``min_words`` with the following siblings (same parent) while they fit.

    A merged section is filed under the common parent heading; each part keeps its own heading as its first line.
    """
    merged: list[Section] = []
    index = 0
    while index < len(sections):
        group = [sections[index]]
        words = word_count(sections[index].text)
        parent = sections[index].heading_path[:-1]
        while words < min_words and index + 1 < len(sections):
            candidate = sections[index + 1]
            if candidate.heading_path[:-1] != parent or not candidate.heading_path:
                break
            if words + word_count(candidate.text) > max_words:
                break
            group.append(candidate)
            words += word_count(candidate.text)
            index += 1
        index += 1
        if len(group) == 1:
            merged.append(group[0])
            continue
        parts = [f"{s.heading_path[-1]}\n{s.text}" if s.heading_path else s.text for s in group]
        merged.append(Section(heading_path=list(parent), text="\n\n".join(parts)))
    return merged


def _pieces(paragraph: str, max_words: int) -> list[str]:
    # (Called with max_words less the overlap, so that a piece and the overlap before it fit in one chunk.)
    """Cut a paragraph into pieces of at most ``max_words`` words: at sentence ends, else at word boundaries."""
    if word_count(paragraph) <= max_words:
        return [paragraph]
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        words = sentence.split()
        for start in range(0, len(words), max_words):
            pieces.append(" ".join(words[start : start + max_words]))
    return pieces


def split_section(text: str, *, max_words: int, overlap_words: int) -> list[str]:
    """Return the chunk texts of one section, each at most ``max_words`` words (overlap included)."""
    units = [
        piece
        for paragraph in text.split("\n\n")
        for piece in _pieces(paragraph.strip(), max_words - overlap_words)
        if piece
    ]
    chunks: list[str] = []
    current: list[str] = []
    current_words = 0
    for unit in units:
        words = word_count(unit)
        if current and current_words + words > max_words:
            chunks.append("\n\n".join(current))
            # The next chunk starts with the end of this one, as much of it as fits beside the unit.
            keep = min(overlap_words, max_words - words)
            tail = " ".join(chunks[-1].split()[-keep:]) if keep > 0 else ""
            current, current_words = ([tail], word_count(tail)) if tail else ([], 0)
        current.append(unit)
        current_words += words
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def chunk_sections(
    sections: list[Section],
    *,
    max_words: int = MAX_WORDS,
    overlap_words: int = OVERLAP_WORDS,
    min_words: int = MIN_WORDS,
) -> list[ChunkDraft]:
    """Return the chunks of a document, numbered from 0 in reading order."""
    if overlap_words >= max_words:
        raise ValueError("overlap_words must be smaller than max_words")
    drafts: list[ChunkDraft] = []
    for section in merge_small_sections(sections, min_words=min_words, max_words=max_words):
        for text in split_section(section.text, max_words=max_words, overlap_words=overlap_words):
            drafts.append(
                ChunkDraft(
                    position=len(drafts),
                    heading_path=list(section.heading_path),
                    text=text,
                    token_count=token_count(text),
                )
            )
    return drafts
