"""Prompt versions: a saved prompt is never changed, an edit is a new version; at most one version per name is active.

Every trace names the version that produced it (``openai:<name>@v<version>:<model>``), so the text behind an old
trace must stay what it was. Both writes go through ``governance.changes.config_object_save``: validated and audited
with old and new values, in one transaction.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Max

from agent.models import PromptVersion
from governance.audit import Actor
from governance.changes import config_object_save


@transaction.atomic
def prompt_version_create(
    *, actor: Actor, name: str, system_prompt: str, guidance: str = "", activate: bool = False
) -> PromptVersion:
    """Save a new version of the prompt ``name`` (the next number); make it the active one when ``activate``."""
    # Two saves at once must not both take the next number; a row lock would not cover a name's first version, so
    # the name is locked itself (a PostgreSQL advisory lock, released at commit).
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"agent.promptversion:{name}"])
    latest = PromptVersion.objects.filter(name=name).aggregate(latest=Max("version"))["latest"] or 0
    if activate:
        _deactivate_others(actor=actor, name=name, reason=f"v{latest + 1} created active")
    return config_object_save(
        actor=actor,
        instance=PromptVersion(
            name=name, version=latest + 1, system_prompt=system_prompt, guidance=guidance, active=activate
        ),
    )


@transaction.atomic
def prompt_version_set_active(*, actor: Actor, prompt_version_id: int, active: bool) -> PromptVersion:
    """Make a version the active one of its name (the one active before stops being), or stop it being active."""
    prompt = PromptVersion.objects.select_for_update().get(pk=prompt_version_id)
    if prompt.active == active:
        return prompt
    if active:
        _deactivate_others(actor=actor, name=prompt.name, reason=f"v{prompt.version} activated")
    prompt.active = active
    return config_object_save(actor=actor, instance=prompt)


def _deactivate_others(*, actor: Actor, name: str, reason: str) -> None:
    # First, before the new active one is saved: the database allows one active version per name at any moment.
    for other in PromptVersion.objects.select_for_update().filter(name=name, active=True):
        other.active = False
        config_object_save(actor=actor, instance=other, reason=reason)
