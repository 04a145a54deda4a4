"""Turn a raw document (Markdown, HTML, plain text, PDF) into sections: a heading path and the text under it.

Everything a reader would not see is dropped before it can reach an embedding or a prompt: hidden HTML elements,
scripts, navigation, and invisible format characters (zero-width spaces, bidi overrides, tag characters), which are a
classic carrier of prompt injection ("ignore previous instructions" written in text no human reviewer sees).
"""

from __future__ import annotations

import html
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from bs4 import BeautifulSoup, Comment, Tag

MARKDOWN = "markdown"
HTML = "html"
TEXT = "text"
PDF = "pdf"
CONTENT_TYPES = (MARKDOWN, HTML, TEXT, PDF)

# MIME types and file suffixes each content type is known by (the API and URL fetches send either).
_ALIASES = {
    MARKDOWN: MARKDOWN,
    "md": MARKDOWN,
    "text/markdown": MARKDOWN,
    "text/x-markdown": MARKDOWN,
    HTML: HTML,
    "htm": HTML,
    "text/html": HTML,
    "application/xhtml+xml": HTML,
    TEXT: TEXT,
    "txt": TEXT,
    "plain": TEXT,
    "text/plain": TEXT,
    PDF: PDF,
    "application/pdf": PDF,
}
SUFFIXES = {".md": MARKDOWN, ".markdown": MARKDOWN, ".html": HTML, ".htm": HTML, ".txt": TEXT, ".pdf": PDF}


class ParseError(Exception):
    """The content cannot be read as its declared type; ``reason`` says why, for the document's ``error``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Section:
    heading_path: list[str] = field(default_factory=list)
    text: str = ""


def normalise_content_type(value: str) -> str | None:
    """Return one of CONTENT_TYPES for a name, MIME type (parameters ignored) or suffix, or None if unknown."""
    key = value.split(";", 1)[0].strip().lower().lstrip(".")
    return _ALIASES.get(key)


def content_type_for_path(path: str) -> str | None:
    return SUFFIXES.get(PurePosixPath(path).suffix.lower())


# --- Text hygiene ----------------------------------------------------------------------------------------------------

_SPACES = re.compile(r"[ \t\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def strip_invisible(text: str) -> str:
    """Remove invisible format characters (Unicode category Cf: U+200B..U+200F, U+2060..U+2064, U+FEFF, bidi
    controls, tag characters, soft hyphens) and control characters other than newlines and tabs."""
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cf", "Cc", "Co", "Cs"))


def clean_text(text: str) -> str:
    """Strip invisible characters, collapse runs of spaces, trim lines and keep at most one blank line."""
    text = strip_invisible(text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def decode_utf8(content: str | bytes) -> str:
    if isinstance(content, str):
        return content
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not valid UTF-8 (byte {exc.start})") from exc


class _SectionBuilder:
    """Collect blocks under the current heading path; a new heading closes the section before it."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._headings: list[tuple[int, str]] = []
        self._blocks: list[str] = []
        self._last_was_line = False

    def heading(self, level: int, title: str) -> None:
        self.flush()
        title = clean_text(title).replace("\n", " ")
        while self._headings and self._headings[-1][0] >= level:
            self._headings.pop()
        if title:
            self._headings.append((level, title))

    def block(self, text: str, *, line: bool = False) -> None:
        """Add a paragraph, or with ``line`` a line joined to the line before it (list items, table rows)."""
        text = clean_text(text)
        if not text:
            return
        if line and self._last_was_line:
            self._blocks[-1] += "\n" + text
        else:
            self._blocks.append(text)
        self._last_was_line = line

    def end_lines(self) -> None:
        """Start a new paragraph with the next line (a list or a table ended)."""
        self._last_was_line = False

    def flush(self) -> None:
        if self._blocks:
            path = [title for _, title in self._headings]
            self.sections.append(Section(heading_path=path, text="\n\n".join(self._blocks)))
        self._blocks = []
        self._last_was_line = False

    def result(self) -> list[Section]:
        self.flush()
        if not self.sections:
            raise ParseError("no text found")
        return self.sections


# --- Markdown --------------------------------------------------------------------------------------------------------


def _inline_text(token) -> str:  # type: ignore[no-untyped-def]
    """Return the visible text of a markdown-it inline token: text, code, image alt text.

    With inline HTML, the line is rebuilt as HTML and read like an HTML page, so that text inside a hidden element
    (``<span style="display:none">``) goes with its tags.
    """
    children = token.children or []
    if any(child.type == "html_inline" for child in children):
        fragment = "".join(
            child.content if child.type == "html_inline" else html.escape(_child_text(child)) for child in children
        )
        return html_visible_text(fragment)
    return "".join(_child_text(child) for child in children)


def _child_text(child) -> str:  # type: ignore[no-untyped-def]
    if child.type in ("text", "code_inline", "image"):  # an image's content is its alt text
        return child.content
    return {"softbreak": " ", "hardbreak": "\n"}.get(child.type, "")


class _MarkdownWalker:
    """Walk markdown-it's token stream: headings open sections; list items and table rows are lines of one block."""

    def __init__(self) -> None:
        self.builder = _SectionBuilder()
        self._lists: list[list[int]] = []  # per open list: [ordered (0/1), next number]
        self._prefix = ""  # the marker of a list item whose first paragraph has not been seen yet
        self._row: list[str] | None = None
        self._heading_level = 0

    def feed(self, token) -> None:  # type: ignore[no-untyped-def]
        kind = token.type
        if kind == "heading_open":
            self._heading_level = int(token.tag[1])
        elif kind == "inline" and self._heading_level:
            self.builder.heading(self._heading_level, _inline_text(token))
            self._heading_level = 0
        elif kind in ("bullet_list_open", "ordered_list_open"):
            self._lists.append([int(kind == "ordered_list_open"), int(token.attrs.get("start", 1) or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self._lists.pop()
            self.builder.end_lines()
        elif kind == "list_item_open":
            ordered, number = self._lists[-1]
            self._lists[-1][1] = number + 1
            self._prefix = "  " * (len(self._lists) - 1) + (f"{number}. " if ordered else "- ")
        elif kind == "table_open":
            self.builder.end_lines()
        elif kind == "tr_open":
            self._row = []
        elif kind == "tr_close" and self._row is not None:
            self.builder.block(" | ".join(self._row), line=True)
            self._row = None
        elif kind == "inline" and self._row is not None:
            self._row.append(_inline_text(token).strip())
        elif kind == "inline":
            self.builder.block(self._prefix + _inline_text(token), line=bool(self._lists))
            self._prefix = ""
        elif kind in ("fence", "code_block"):
            self.builder.block(token.content)
        elif kind == "html_block":
            self.builder.block(html_visible_text(token.content))


def parse_markdown(content: str | bytes) -> list[Section]:
    """CommonMark plus tables; HTML blocks are read as HTML (hidden elements and tags dropped)."""
    from markdown_it import MarkdownIt

    walker = _MarkdownWalker()
    for token in MarkdownIt("commonmark").enable("table").parse(decode_utf8(content)):
        walker.feed(token)
    return walker.builder.result()


# --- HTML ------------------------------------------------------------------------------------------------------------

# Page furniture and non-content: never the document's text.
_DROP_TAGS = ("nav", "header", "footer", "aside", "script", "style", "noscript", "template", "form", "iframe", "svg")
_HIDDEN_STYLE = re.compile(r"(display\s*:\s*none|visibility\s*:\s*hidden)", re.IGNORECASE)
# Tags that end a paragraph (a blank line after them) and tags that end a line.
_PARAGRAPH_TAGS = {
    "p", "div", "section", "article", "main", "pre", "blockquote", "figcaption", "table", "ul", "ol", "dl",
    "caption", "address", "details", "hr",
}  # fmt: skip
_LINE_TAGS = {"dt", "dd", "br", "summary"}  # (an <li> starts its own line)
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


def _is_hidden(tag: Tag) -> bool:
    if tag.attrs is None:
        return False
    if tag.has_attr("hidden") or str(tag.get("aria-hidden", "")).lower() == "true":
        return True
    return bool(_HIDDEN_STYLE.search(str(tag.get("style", ""))))


def _soup(content: str | bytes) -> BeautifulSoup:
    try:
        return BeautifulSoup(content, "lxml")
    except Exception as exc:  # lxml raises a handful of types on garbage; all mean "not HTML we can read"
        raise ParseError(f"not readable HTML: {exc}") from exc


def _prune(root: Tag) -> None:
    """Remove furniture, hidden elements and comments from ``root`` in place."""
    for comment in root.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in root.find_all(_DROP_TAGS):
        tag.decompose()
    for tag in root.find_all(_is_hidden):
        tag.decompose()


def html_visible_text(fragment: str) -> str:
    """Return the text a reader sees in an HTML fragment (used for HTML blocks inside Markdown)."""
    soup = _soup(fragment)
    _prune(soup)
    return soup.get_text(" ")


class _HtmlWalker:
    """Walk the pruned tree in document order: headings open sections, everything else is text of the current one."""

    def __init__(self) -> None:
        self.builder = _SectionBuilder()
        self._buffer: list[str] = []

    def _flush(self) -> None:
        self.builder.block("".join(self._buffer))
        self._buffer.clear()

    def _new_line(self) -> None:
        if self._buffer and not self._buffer[-1].endswith("\n"):
            self._buffer.append("\n")

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if not isinstance(child, Tag):
                self._buffer.append(str(child))
            elif child.name in _HEADINGS:
                self._flush()
                self.builder.heading(int(child.name[1]), child.get_text(" "))
            elif child.name == "tr":
                cells = [cell.get_text(" ", strip=True) for cell in child.find_all(["td", "th"])]
                self._new_line()
                self._buffer.append(" | ".join(cells) + "\n")
            else:
                if child.name == "li":
                    self._new_line()
                    self._buffer.append("- ")
                self.walk(child)
                if child.name in _PARAGRAPH_TAGS:
                    self._buffer.append("\n\n")
                elif child.name in _LINE_TAGS:
                    self._buffer.append("\n")

    def result(self) -> list[Section]:
        self._flush()
        return self.builder.result()


def parse_html(content: str | bytes) -> list[Section]:
    """Read the main content (``<main>``, else ``<article>``, else the body); h1-h6 give the heading path."""
    soup = _soup(content)
    _prune(soup)
    walker = _HtmlWalker()
    walker.walk(soup.find("main") or soup.find("article") or soup.body or soup)
    return walker.result()


# --- Plain text ------------------------------------------------------------------------------------------------------

_UNDERLINE = re.compile(r"^(=+|-+)\s*$")


def _looks_like_caps_heading(line: str) -> bool:
    letters = [ch for ch in line if ch.isalpha()]
    return len(letters) >= 3 and len(line) <= 80 and all(ch.isupper() for ch in letters) and not line.endswith(".")


def parse_text(content: str | bytes) -> list[Section]:
    """Paragraphs separated by blank lines; a line underlined with ==== (level 1) or ---- (level 2), or a short line in
    ALL CAPS standing alone (level 1), is a heading."""
    lines = clean_text(decode_utf8(content)).split("\n")
    builder = _SectionBuilder()
    paragraph: list[str] = []

    def end_paragraph() -> None:
        builder.block("\n".join(paragraph))
        paragraph.clear()

    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if _UNDERLINE.match(line) and index > 0 and lines[index - 1].strip() and not paragraph:
            continue  # the underline of a heading handled on the line before
        if line and _UNDERLINE.match(following) and len(following) >= 3:
            end_paragraph()
            builder.heading(1 if following.startswith("=") else 2, line)
        elif line and _looks_like_caps_heading(line) and not paragraph and not following:
            builder.heading(1, line)
        elif not line:
            end_paragraph()
        else:
            paragraph.append(line)
    end_paragraph()
    return builder.result()


# --- PDF -------------------------------------------------------------------------------------------------------------


def parse_pdf(content: str | bytes) -> list[Section]:
    """One section per page with text, under "Page N" (PDF outlines are too unreliable to build headings from)."""
    from pypdf import PdfReader

    if isinstance(content, str):
        raise ParseError("a PDF must be sent as bytes")
    try:
        reader = PdfReader(io.BytesIO(content))
        # Many PDFs are "encrypted" with an empty user password only (to set permissions): those open.
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("the PDF is encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ParseError:
        raise
    except Exception as exc:
        # Untrusted input at a third-party boundary: on malformed files pypdf raises far more than PyPdfError
        # (IndexError, KeyError, struct.error, zlib.error, RecursionError, ...); each means "not a readable PDF".
        raise ParseError(f"not a readable PDF: {type(exc).__name__}: {exc}") from exc
    builder = _SectionBuilder()
    for number, text in enumerate(pages, start=1):
        builder.heading(1, f"Page {number}")
        builder.block(text)
    try:
        return builder.result()
    except ParseError:
        raise ParseError("the PDF has no extractable text (a scan without OCR?)") from None


PARSERS: dict[str, Callable[[str | bytes], list[Section]]] = {
    MARKDOWN: parse_markdown,
    HTML: parse_html,
    TEXT: parse_text,
    PDF: parse_pdf,
}


def parse(content: str | bytes, content_type: str) -> list[Section]:
    """Return the sections of ``content``; raise ParseError if it cannot be read as ``content_type``."""
    kind = normalise_content_type(content_type)
    if kind is None:
        raise ParseError(f"unknown content type {content_type!r}")
    return PARSERS[kind](content)
