"""Where a source's documents come from: one lister per origin, in a plain dict registry.

A lister opens the origin (a folder, a zip, an HTTP client) for the length of a run and returns its documents as
``RawDocument`` items whose content is read lazily, one at a time, so that one unreadable file or unreachable URL
fails alone. ``complete`` says whether the listing is the whole origin: only then are documents missing from it
removed from the source.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from knowledge.exceptions import OriginError
from knowledge.models import KnowledgeSource, Origin
from knowledge.parsers import content_type_for_path, normalise_content_type

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024  # uploads, files in a folder or zip, fetched pages
URL_TIMEOUT_SECONDS = 15.0
MAX_URLS = 1000
USER_AGENT = "Steward knowledge ingestion (+https://github.com/steward)"


class DocumentUnreadable(Exception):
    """One document could not be read from its origin (the run records it and carries on)."""


@dataclass(frozen=True)
class RawDocument:
    external_id: str
    title: str
    content_type: str  # one of parsers.CONTENT_TYPES, or "" when only the content tells (a fetched URL)
    load: Callable[[], tuple[bytes | str, str]]  # -> (content, content_type); raises DocumentUnreadable
    url: str = ""
    version: str = ""
    # The title above is a guess from a file name or URL: prefer the content's own (<title>, first "# " heading).
    title_from_content: bool = False


@dataclass(frozen=True)
class Listing:
    documents: list[RawDocument]
    complete: bool  # True: a stored document missing from `documents` was removed at the origin


def title_from_path(path: str) -> str:
    """Return "Returns policy" for "policies/returns-policy.md"."""
    stem = PurePosixPath(path).stem
    words = re.sub(r"[-_]+", " ", stem).strip()
    return (words[:1].upper() + words[1:]) if words else path


_MARKDOWN_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def title_from_content(content: bytes | str, content_type: str) -> str:
    """Return the title a document gives itself: HTML <title> (else first <h1>), Markdown's first "# " heading."""
    from bs4 import BeautifulSoup

    from knowledge.parsers import clean_text

    if content_type == "html":
        soup = BeautifulSoup(content[:200_000], "lxml")
        tag = soup.find("title") or soup.find("h1")
        return clean_text(tag.get_text(" "))[:500] if tag else ""
    if content_type == "markdown":
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        match = _MARKDOWN_TITLE.search(text[:20_000])
        return clean_text(match.group(1))[:500] if match else ""
    return ""


# --- Configuration ---------------------------------------------------------------------------------------------------


def validate_origin_config(origin: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """Return the origin configuration, checked; raise OriginError naming what is wrong."""
    config = dict(config or {})
    if origin == Origin.FOLDER:
        path = config.get("path")
        if not isinstance(path, str) or not path.strip():
            raise OriginError('A folder source needs "path": a directory or a .zip file on the server.')
        _check_folder_root(Path(path))
    elif origin == Origin.URL_LIST:
        urls = config.get("urls")
        if not isinstance(urls, list) or not urls or len(urls) > MAX_URLS:
            raise OriginError(f'A URL-list source needs "urls": a list of 1 to {MAX_URLS} http(s) URLs.')
        bad = [url for url in urls if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https")]
        if bad:
            raise OriginError(f"Not an http(s) URL: {bad[0]!r}.")
    elif origin == Origin.HELPDESK_KB:
        categories = config.get("categories", [])
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise OriginError('"categories" must be a list of helpdesk knowledge-base category slugs.')
    return config


def _check_folder_root(path: Path) -> None:
    """Refuse a folder outside KNOWLEDGE_FOLDER_ROOTS when that setting is given (it confines what admins may read)."""
    roots = getattr(settings, "KNOWLEDGE_FOLDER_ROOTS", None)
    if not roots:
        return
    resolved = path.resolve()
    if not any(resolved.is_relative_to(Path(root).resolve()) for root in roots):
        raise OriginError(f"{path} is outside the folders knowledge may be read from (KNOWLEDGE_FOLDER_ROOTS).")


# --- Uploaded and pushed documents -----------------------------------------------------------------------------------


def raw_storage_name(source_id: int, external_id: str) -> str:
    """Return where an uploaded document's raw content is kept in default_storage.

    The external id is hashed: it may hold slashes, ".." or characters a file system refuses.
    """
    digest = hashlib.sha256(external_id.encode("utf-8")).hexdigest()[:40]
    return f"knowledge/{source_id}/{digest}"


def raw_content_store(*, source_id: int, external_id: str, content: bytes | str) -> str:
    name = raw_storage_name(source_id, external_id)
    raw = content.encode("utf-8") if isinstance(content, str) else content
    if default_storage.exists(name):
        default_storage.delete(name)  # storages add a suffix instead of overwriting
    return default_storage.save(name, ContentFile(raw))


def raw_content_delete(*, source_id: int, external_id: str) -> None:
    name = raw_storage_name(source_id, external_id)
    if default_storage.exists(name):
        default_storage.delete(name)


@contextmanager
def _list_stored(source: KnowledgeSource) -> Iterator[Listing]:
    def loader(external_id: str, content_type: str) -> Callable[[], tuple[bytes | str, str]]:
        def load() -> tuple[bytes | str, str]:
            name = raw_storage_name(source.pk, external_id)
            if not default_storage.exists(name):
                raise DocumentUnreadable("its uploaded content is missing from storage; upload it again")
            with default_storage.open(name, "rb") as handle:
                return handle.read(), content_type

        return load

    documents = [
        RawDocument(
            external_id=doc.external_id,
            title=doc.title,
            content_type=doc.content_type,
            url=doc.url,
            version=doc.version,
            load=loader(doc.external_id, doc.content_type),
        )
        for doc in source.documents.order_by("external_id").only(
            "external_id", "title", "content_type", "url", "version"
        )
    ]
    yield Listing(documents=documents, complete=False)


# --- Folders and zips ------------------------------------------------------------------------------------------------


def _is_hidden(relative: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(relative).parts)


def _read_file(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            raise DocumentUnreadable(f"larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB")
        return path.read_bytes()
    except OSError as exc:
        raise DocumentUnreadable(f"cannot be read: {exc.strerror or exc}") from exc


def _folder_documents(root: Path) -> list[RawDocument]:
    documents = []
    # followlinks=False, and symlinked files are skipped: a link must not pull in files from outside the folder.
    for directory, subdirs, files in os.walk(root, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            content_type = content_type_for_path(name)
            if content_type is None or _is_hidden(relative) or path.is_symlink():
                continue
            documents.append(
                RawDocument(
                    external_id=relative,
                    title=title_from_path(relative),
                    content_type=content_type,
                    title_from_content=True,
                    load=lambda path=path, content_type=content_type: (_read_file(path), content_type),
                )
            )
    return documents


def _zip_documents(archive: zipfile.ZipFile) -> list[RawDocument]:
    def load(info: zipfile.ZipInfo, content_type: str) -> tuple[bytes, str]:
        # file_size is what the archive claims; read one byte more than allowed to catch a lying header (zip bombs).
        if info.file_size > MAX_DOCUMENT_BYTES:
            raise DocumentUnreadable(f"larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB")
        try:
            with archive.open(info) as handle:
                data = handle.read(MAX_DOCUMENT_BYTES + 1)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            raise DocumentUnreadable(f"cannot be read from the zip: {exc}") from exc
        if len(data) > MAX_DOCUMENT_BYTES:
            raise DocumentUnreadable(f"larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB")
        return data, content_type

    documents = []
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        name = info.filename.replace("\\", "/").lstrip("/")
        content_type = content_type_for_path(name)
        if info.is_dir() or content_type is None or _is_hidden(name) or ".." in PurePosixPath(name).parts:
            continue
        documents.append(
            RawDocument(
                external_id=name,
                title=title_from_path(name),
                content_type=content_type,
                title_from_content=True,
                load=lambda info=info, content_type=content_type: load(info, content_type),
            )
        )
    return documents


@contextmanager
def _list_folder(source: KnowledgeSource) -> Iterator[Listing]:
    config = validate_origin_config(Origin.FOLDER, source.origin_config)
    path = Path(config["path"]).expanduser()
    if path.is_dir():
        yield Listing(documents=_folder_documents(path), complete=True)
    elif path.is_file() and path.suffix.lower() == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise OriginError(f"{path} is not a readable zip file: {exc}") from exc
        with archive:
            yield Listing(documents=_zip_documents(archive), complete=True)
    else:
        raise OriginError(f"{path} is neither a directory nor a .zip file (is it mounted?)")


# --- URL lists -------------------------------------------------------------------------------------------------------


def _fetch(client: Any, url: str) -> tuple[bytes, str]:
    import httpx

    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise DocumentUnreadable(f"HTTP {response.status_code}")
            declared = response.headers.get("content-type", "")
            content_type = normalise_content_type(declared) or content_type_for_path(urlsplit(url).path)
            if content_type is None:
                raise DocumentUnreadable(f"unsupported content type {declared or 'none'!r}")
            body = bytearray()
            for block in response.iter_bytes():
                body.extend(block)
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise DocumentUnreadable(f"larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB")
    except httpx.HTTPError as exc:
        raise DocumentUnreadable(f"fetch failed: {type(exc).__name__}: {exc}") from exc
    return bytes(body), content_type


@contextmanager
def _list_urls(source: KnowledgeSource) -> Iterator[Listing]:
    import httpx

    config = validate_origin_config(Origin.URL_LIST, source.origin_config)
    timeout = httpx.Timeout(URL_TIMEOUT_SECONDS, connect=5.0)
    with httpx.Client(timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT}) as client:
        documents = [
            RawDocument(
                external_id=url,
                title=title_from_path(urlsplit(url).path) if urlsplit(url).path.strip("/") else urlsplit(url).netloc,
                content_type="",
                url=url,
                title_from_content=True,
                load=lambda url=url: _fetch(client, url),
            )
            for url in dict.fromkeys(config["urls"])  # de-duplicated, in order
        ]
        yield Listing(documents=documents, complete=True)


# --- django-helpdesk's knowledge base --------------------------------------------------------------------------------


@contextmanager
def _list_helpdesk_kb(source: KnowledgeSource) -> Iterator[Listing]:
    from helpdesk.models import KBItem

    config = validate_origin_config(Origin.HELPDESK_KB, source.origin_config)
    items = KBItem.objects.filter(enabled=True).select_related("category").order_by("pk")
    if config.get("categories"):
        items = items.filter(category__slug__in=config["categories"])
    base = settings.SITE_URL.rstrip("/")
    documents = [
        RawDocument(
            external_id=f"kbitem:{item.pk}",
            title=item.title,
            content_type="markdown",  # django-helpdesk renders answers as Markdown
            url=base + item.get_absolute_url(),
            version=item.last_updated.isoformat() if item.last_updated else "",
            load=lambda item=item: (f"{item.question}\n\n{item.answer}", "markdown"),
        )
        for item in items
    ]
    yield Listing(documents=documents, complete=True)


ORIGINS: dict[str, Callable[[KnowledgeSource], Any]] = {
    Origin.UPLOAD: _list_stored,
    Origin.API: _list_stored,
    Origin.FOLDER: _list_folder,
    Origin.URL_LIST: _list_urls,
    Origin.HELPDESK_KB: _list_helpdesk_kb,
}
