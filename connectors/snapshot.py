"""Connector reads from a regression suite's recorded snapshot (docs/suites.md, "Recorded snapshot").

In a dry run whose suite has a snapshot, ``gateway.adapter_for`` wraps the adapter in ``SnapshotReads``: reads are
served from the snapshot (or, while recording, go to the system and are stored in it); writes never run in a dry run
(``gateway.idempotent`` records them instead). An object entry of the form ``{"failure": "why"}`` makes that read fail
as a transient connector error, so a suite can rehearse what the agent does when a system is down.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from connectors.base import ConnectorError, CustomerRef, NotFound
from governance.dry_run import DryRun

FAILURE = "failure"


class SnapshotReads:
    """An adapter whose reads come from (or, recording, go into) a dry run's snapshot; everything else is the
    adapter's own (its writes never run in a dry run: ``gateway.idempotent`` stops them)."""

    def __init__(self, adapter: Any, connector_key: str, run: DryRun) -> None:
        self._adapter = adapter
        assert run.snapshot is not None
        self._store = run.snapshot.setdefault(connector_key, {"objects": {}, "customers": {}})
        self._store.setdefault("objects", {})
        self._store.setdefault("customers", {})
        self._recording = run.recording
        self._key = connector_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    def read_object(self, obj: str, object_id: str) -> dict[str, Any]:
        key = f"{obj}/{object_id}"
        if self._recording:
            raw = self._adapter.read_object(obj, object_id)
            self._store["objects"][key] = raw
            return raw
        if key not in self._store["objects"]:
            raise NotFound(f"{obj} {object_id} is not in the suite's recorded snapshot")
        raw = self._store["objects"][key]
        if set(raw) == {FAILURE}:
            # A failure written into the snapshot by hand: the suite rehearses what the agent does when a system fails.
            raise ConnectorError(f"{self._key} failed (from the suite's snapshot): {raw[FAILURE]}")
        return dict(raw)

    def find_customers(self, *, email: str = "", external_id: str = "", phone: str = "") -> list[Any]:
        key = (email or external_id or phone).lower()
        if self._recording:
            found = self._adapter.find_customers(email=email, external_id=external_id, phone=phone)
            self._store["customers"][key] = [asdict(ref) for ref in found]
            return found
        return [CustomerRef(**ref) for ref in self._store["customers"].get(key, [])]


_CUSTOMER_FIELDS = {"id", "email", "name"}


def snapshot_problems(data: Any) -> list[str]:
    """Return what is wrong with a snapshot's shape (empty when it can be served), each naming where."""
    if not isinstance(data, dict):
        return ['a snapshot is an object: {"<connector key>": {"objects": {...}, "customers": {...}}}']
    problems = []
    for connector, part in data.items():
        if not isinstance(part, dict) or set(part) - {"objects", "customers"}:
            problems.append(f'{connector}: an object with "objects" and/or "customers"')
            continue
        problems += _object_problems(connector, part.get("objects", {}))
        problems += _customer_problems(connector, part.get("customers", {}))
    return problems


def _object_problems(connector: str, objects: Any) -> list[str]:
    if not isinstance(objects, dict):
        return [f'{connector}.objects: an object of "<object>/<id>": record']
    problems = []
    for key, raw in objects.items():
        where = f"{connector}.objects[{key!r}]"
        if "/" not in key:
            problems.append(f'{where}: the key is "<object>/<id>", e.g. "order/BL-10042"')
        elif not isinstance(raw, dict):
            problems.append(f"{where}: a record (an object of field: value)")
        elif FAILURE in raw and (set(raw) != {FAILURE} or not isinstance(raw[FAILURE], str)):
            problems.append(f'{where}: a failure is {{"{FAILURE}": "why"}} and nothing else')
    return problems


def _customer_problems(connector: str, customers: Any) -> list[str]:
    if not isinstance(customers, dict):
        return [f"{connector}.customers: an object of e-mail (or id, phone): [customers found]"]
    problems = []
    for key, found in customers.items():
        refs_ok = isinstance(found, list) and all(
            isinstance(ref, dict)
            and set(ref) <= _CUSTOMER_FIELDS
            and isinstance(ref.get("id"), str)
            and all(isinstance(value, str) for value in ref.values())
            for ref in found
        )
        if not refs_ok:
            problems.append(f'{connector}.customers[{key!r}]: a list of {{"id", "email", "name"}} (text)')
    return problems
