"""Chunking: sizes, overlap, section boundaries, merging of tiny sections, positions."""

from __future__ import annotations

import pytest

from knowledge.chunking import chunk_sections, merge_small_sections, split_section, token_count
from knowledge.parsers import Section


def words(n: int, prefix: str = "w") -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


def test_a_short_section_is_one_chunk_with_its_heading_path() -> None:
    (chunk,) = chunk_sections([Section(["Returns", "Damaged"], "Send a photo within 7 days.")])
    assert (chunk.position, chunk.heading_path, chunk.heading) == (0, ["Returns", "Damaged"], "Returns › Damaged")
    assert chunk.token_count == token_count("Send a photo within 7 days.") == 7


def test_long_sections_split_near_the_size_with_overlap() -> None:
    chunks = chunk_sections([Section(["Manual"], words(400))], max_words=100, overlap_words=20)
    assert len(chunks) == 5
    assert all(len(c.text.split()) <= 100 for c in chunks)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.text.split()[:20] == before.text.split()[-20:]
    covered = set(" ".join(c.text for c in chunks).split())
    assert covered == set(words(400).split())


def test_paragraphs_are_kept_whole_where_they_fit() -> None:
    text = "\n\n".join(words(40, f"p{i}-") for i in range(4))
    chunks = split_section(text, max_words=90, overlap_words=0)
    assert chunks == ["\n\n".join(text.split("\n\n")[0:2]), "\n\n".join(text.split("\n\n")[2:4])]


def test_a_long_paragraph_is_cut_at_sentence_ends() -> None:
    sentence = "The grinder has " + words(20) + "."
    chunks = split_section(" ".join([sentence] * 4), max_words=50, overlap_words=0)
    assert all(chunk.endswith(".") for chunk in chunks)


def test_chunks_never_cross_a_section_boundary() -> None:
    sections = [Section(["A"], words(150, "a")), Section(["B"], words(150, "b"))]
    chunks = chunk_sections(sections, max_words=100, overlap_words=10, min_words=5)
    for chunk in chunks:
        prefixes = {word[0] for word in chunk.text.split()}
        assert prefixes == {chunk.heading_path[0].lower()}
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_tiny_sibling_sections_merge_under_their_parent() -> None:
    sections = [
        Section(["FAQ", "Can I pay by invoice?"], "Yes, for business accounts."),
        Section(["FAQ", "Do you ship abroad?"], "Within the EU."),
        Section(["Shipping"], "Two days."),
    ]
    merged = merge_small_sections(sections, min_words=40, max_words=180)
    assert merged == [
        Section(["FAQ"], "Can I pay by invoice?\nYes, for business accounts.\n\nDo you ship abroad?\nWithin the EU."),
        Section(["Shipping"], "Two days."),
    ]


def test_a_tiny_section_does_not_merge_into_a_long_sibling() -> None:
    sections = [Section(["FAQ", "Short"], "Yes."), Section(["FAQ", "Long"], words(200))]
    assert merge_small_sections(sections, min_words=40, max_words=180) == sections


def test_overlap_must_be_smaller_than_the_chunk() -> None:
    with pytest.raises(ValueError):
        chunk_sections([Section([], "x")], max_words=10, overlap_words=10)
