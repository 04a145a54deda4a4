"""The demo company's knowledge base (Brewline Coffee): Markdown articles in ``demo_content/``, one folder per source.

``demo_content/sources.json`` lists the sources with their governance metadata; each article starts with a small
front-matter block (``title``, ``url``, ``version``, ``products``) between ``---`` lines. Parsing is pure and tested
without a database. ``seed_knowledge`` creates the missing sources and uploads each folder's articles through the
knowledge services (audited, actor ``None``: the system). The sources are upload sources, not folder sources: a folder
source would re-read the files without their front matter (title, url, version) and under other external ids, while
an uploaded document's stored content is what a re-index rebuilds from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from knowledge.ingestion import content_hash
from knowledge.models import (
    Audience,
    Confidence,
    Document,
    DocumentStatus,
    KnowledgeSource,
    Origin,
    SourceKind,
    SourceStatus,
)
from knowledge.services import (
    document_remove,
    document_upload,
    source_approve,
    source_create,
    source_mark_reviewed,
)

CONTENT_DIR = Path(__file__).resolve().parent / "demo_content"
SOURCES_FILE = CONTENT_DIR / "sources.json"
# The demo company's catalogue: every ``products`` value in sources.json and in front matter is one of these.
PRODUCTS = ("Brewline Classic", "Brewline Duo", "Brewline Burr", "Brewline Froth", "Pourover kit")
FRONT_MATTER_KEYS = ("title", "url", "version", "products")

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<head>.*?)\n---[ \t]*\n(?P<body>.*)\Z", re.DOTALL)
_SECTION = re.compile(r"^##[ \t]+(?P<title>\S.*)$", re.MULTILINE)
_WORD = re.compile(r"[^\W_]+(?:['’.,-][^\W_]+)*")


class DemoContentError(Exception):
    """The demo content or its prerequisites are wrong; the message says which file or user."""


@dataclass(frozen=True)
class Article:
    """One help-centre article: its front matter and its Markdown body."""

    path: str  # relative to CONTENT_DIR, with forward slashes: the document's external_id
    title: str
    url: str
    version: str
    products: tuple[str, ...]
    body: str

    @property
    def sections(self) -> list[str]:
        return [match["title"].strip() for match in _SECTION.finditer(self.body)]

    @property
    def word_count(self) -> int:
        return len(_WORD.findall(self.body))


@dataclass(frozen=True)
class SourceSpec:
    """One entry of sources.json."""

    name: str
    folder: str
    kind: str
    audience: str
    products: tuple[str, ...]
    version_scope: str
    confidence: str
    review_interval_days: int
    last_reviewed_days_ago: int
    owner: str
    fallback_owner: str
    status: str = SourceStatus.APPROVED


# --- Parsing (pure) ---------------------------------------------------------------------------------------------------


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_front_matter(text: str, *, path: str = "<text>") -> tuple[dict[str, str], str]:
    """Split ``text`` into its front-matter fields (``key: value`` lines) and the body after the closing ``---``."""
    match = _FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if match is None:
        raise DemoContentError(f"{path}: no front matter between --- lines at the top")
    fields: dict[str, str] = {}
    for number, line in enumerate(match["head"].split("\n"), start=2):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        key = key.strip()
        if not colon or key not in FRONT_MATTER_KEYS:
            raise DemoContentError(f"{path}:{number}: expected one of {', '.join(FRONT_MATTER_KEYS)} as 'key: value'")
        if key in fields:
            raise DemoContentError(f"{path}:{number}: {key} is given twice")
        fields[key] = _unquote(value)
    return fields, match["body"].strip() + "\n"


def split_products(value: str) -> tuple[str, ...]:
    """Return the comma-separated product names in ``value`` (empty means all products)."""
    return tuple(name.strip() for name in value.split(",") if name.strip())


def parse_article(text: str, *, path: str) -> Article:
    """Parse one article file; raise DemoContentError when its title or url is missing."""
    fields, body = parse_front_matter(text, path=path)
    for required in ("title", "url"):
        if not fields.get(required):
            raise DemoContentError(f"{path}: front matter has no {required}")
    return Article(
        path=path,
        title=fields["title"],
        url=fields["url"],
        version=fields.get("version", ""),
        products=split_products(fields.get("products", "")),
        body=body,
    )


def load_articles(folder: str, *, root: Path = CONTENT_DIR) -> list[Article]:
    """Return the articles directly in ``root/folder`` (sub-folders are sources of their own), sorted by path."""
    directory = root / folder
    if not directory.is_dir():
        raise DemoContentError(f"{directory}: no such folder")
    return [
        parse_article(file.read_text(encoding="utf-8"), path=file.relative_to(root).as_posix())
        for file in sorted(directory.glob("*.md"))
    ]


def load_source_specs(path: Path = SOURCES_FILE) -> list[SourceSpec]:
    """Read sources.json; raise DemoContentError on an unknown field or choice."""
    try:
        rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DemoContentError(f"{path}: {exc}") from exc
    specs = []
    for row in rows:
        try:
            spec = SourceSpec(**{**row, "products": tuple(row.get("products", ()))})
        except TypeError as exc:
            raise DemoContentError(f"{path}: source {row.get('name')!r}: {exc}") from exc
        _check_choices(spec, path)
        specs.append(spec)
    return specs


def _check_choices(spec: SourceSpec, path: Path) -> None:
    choices = {
        "kind": SourceKind.values,
        "audience": Audience.values,
        "confidence": Confidence.values,
        "status": SourceStatus.values,
    }
    for name, allowed in choices.items():
        if getattr(spec, name) not in allowed:
            raise DemoContentError(f"{path}: source {spec.name!r}: {name} must be one of {', '.join(allowed)}")
    unknown = set(spec.products) - set(PRODUCTS)
    if unknown:
        raise DemoContentError(f"{path}: source {spec.name!r}: unknown products {sorted(unknown)}")


# --- Seeding ----------------------------------------------------------------------------------------------------------

SEED_NOTE = "demo company seed"


def _users(specs: list[SourceSpec]) -> dict[str, Any]:
    """Return the owners named in ``specs`` by username; raise if one is missing."""
    wanted = {spec.owner for spec in specs} | {spec.fallback_owner for spec in specs}
    found = {user.username: user for user in get_user_model().objects.filter(username__in=wanted)}
    missing = sorted(wanted - set(found))
    if missing:
        raise DemoContentError(
            f"Demo source owners {', '.join(missing)} do not exist: run governance.demo.seed_governance() first "
            "(manage.py seed_demo does)."
        )
    return found


@transaction.atomic
def _source_ensure(spec: SourceSpec, users: dict[str, Any]) -> tuple[KnowledgeSource, bool]:
    """Return the source named ``spec.name``, creating it if missing. An existing source is left as an admin may
    have edited it (owner, status, review date)."""
    existing = KnowledgeSource.objects.filter(name=spec.name).first()
    if existing is not None:
        return existing, False
    reviewed_on = timezone.localdate() - timedelta(days=spec.last_reviewed_days_ago)
    source = source_create(
        actor=None,
        owner=users[spec.owner],
        name=spec.name,
        kind=spec.kind,
        fallback_owner=users[spec.fallback_owner],
        audience=spec.audience,
        products=list(spec.products),
        version_scope=spec.version_scope,
        confidence=spec.confidence,
        last_reviewed_on=reviewed_on,
        review_interval_days=spec.review_interval_days,
        origin=Origin.UPLOAD,
    )
    if spec.status == SourceStatus.APPROVED:
        source = source_approve(actor=None, source=source, note=SEED_NOTE)
        # Approving counts as a review today; put the demo's review date back so that one source is due and one
        # stale on purpose (sources.json, last_reviewed_days_ago).
        if source.last_reviewed_on != reviewed_on:
            source = source_mark_reviewed(actor=None, source=source, reviewed_on=reviewed_on, note=SEED_NOTE)
    return source, True


def _is_current(document: Document | None, article: Article) -> bool:
    """Return whether ``document`` already serves exactly this article (so uploading it again would change nothing)."""
    return (
        document is not None
        and document.status == DocumentStatus.READY
        and document.content_hash == content_hash(article.body)
        and (document.title, document.url, document.version) == (article.title, article.url, article.version)
    )


def _documents_sync(source: KnowledgeSource, folder: str, articles: list[Article]) -> dict[str, int]:
    """Upload each new or changed article to ``source`` and remove the demo documents whose file is gone.

    Only documents with a demo path (``<folder>/<name>.md``) are ever removed: one an admin added stays.
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0, "removed": 0}
    prefix = f"{folder}/"
    known = {
        doc.external_id: doc
        for doc in source.documents.filter(external_id__startswith=prefix, external_id__endswith=".md")
        if "/" not in doc.external_id.removeprefix(prefix)
    }
    for article in articles:
        previous = known.pop(article.path, None)
        if _is_current(previous, article):
            counts["unchanged"] += 1
            continue
        document = document_upload(
            actor=None,
            source=source,
            external_id=article.path,
            title=article.title,
            content=article.body,
            content_type="markdown",
            url=article.url,
            version=article.version,
        )
        if document.status != DocumentStatus.READY:
            raise DemoContentError(f"{article.path}: ingestion failed: {document.error}")
        counts["created" if previous is None else "updated"] += 1
    for document in known.values():
        document_remove(actor=None, document=document)
        counts["removed"] += 1
    return counts


def seed_knowledge(*, only: list[str] | None = None) -> dict[str, int]:
    """Create the demo knowledge sources that are missing and upload their articles; return what was done.

    Safe to run again: existing sources are kept as they are, and an article already serving unchanged is not
    uploaded again (nothing re-embedded, no audit record). Each article is embedded and swapped in on its own
    (document_upload), so call this outside a long transaction where possible.
    """
    specs = [spec for spec in load_source_specs() if only is None or spec.folder in only]  # `only`: tests, by folder
    users = _users(specs)
    made = {
        "knowledge sources": 0,
        "documents created": 0,
        "documents updated": 0,
        "documents unchanged": 0,
        "documents removed": 0,
    }
    for spec in specs:
        articles = load_articles(spec.folder)  # parse everything of a source before writing any of it
        source, created = _source_ensure(spec, users)
        made["knowledge sources"] += created
        for outcome, count in _documents_sync(source, spec.folder, articles).items():
            made[f"documents {outcome}"] += count
    return made
