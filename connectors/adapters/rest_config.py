"""The REST adapters' configuration: the operations they know, JSON paths, and the validation of
``Connector.config`` into typed settings. The schema is documented in connectors/adapters/rest.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Operation:
    """What the adapter knows about one operation: its family, arguments and result names."""

    family: str
    arguments: tuple[str, ...]
    writes: bool
    is_list: bool = False
    required: tuple[str, ...] = ()
    known: tuple[str, ...] | None = None  # the result names it understands; None: any (returned as a dict)


OPERATIONS: dict[str, Operation] = {
    "find_customers": Operation(
        "crm", ("email", "phone", "external_id"), False, True, ("id",), ("id", "email", "name")
    ),
    "add_note": Operation("crm", ("customer_id", "text"), True, required=("id",), known=("id",)),
    "add_tag": Operation("crm", ("customer_id", "tag"), True, known=()),
    "create_task": Operation("crm", ("customer_id", "title", "due"), True, required=("id",), known=("id",)),
    "list_orders": Operation(
        "commerce",
        ("customer_id",),
        False,
        True,
        ("id", "status"),
        ("id", "status", "placed_at", "total", "currency"),
    ),
    "pause_subscription": Operation("commerce", ("subscription_id",), True),
    "resume_subscription": Operation("commerce", ("subscription_id",), True),
    "cancel_subscription": Operation("commerce", ("subscription_id",), True),
    "change_shipping_address": Operation(
        "commerce",
        ("order_id", "address.line1", "address.line2", "address.city", "address.postcode", "address.country"),
        True,
    ),
    "refund": Operation(
        "commerce",
        ("order_id", "amount", "reason"),
        True,
        required=("id", "amount", "currency", "status"),
        known=("id", "amount", "currency", "status"),
    ),
}


# --- JSON paths ------------------------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"([^.\[\]]*)((?:\[\d+\])*)")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_json_path(path: str) -> tuple[str | int, ...]:
    """Split ``a.b[0].c`` (or ``a.b.0.c``) into ("a", "b", 0, "c"); "" is the whole document. Raise ValueError."""
    if path == "":
        return ()
    tokens: list[str | int] = []
    for segment in path.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None or not (match.group(1) or match.group(2)):
            raise ValueError(f"{path!r} is not a JSON path (dotted names, list indexes as [0] or .0)")
        name, indexes = match.groups()
        if name:
            tokens.append(int(name) if name.isdigit() else name)
        tokens.extend(int(index) for index in re.findall(r"\d+", indexes))
    return tuple(tokens)


def lookup(data: Any, path: str) -> tuple[bool, Any]:
    """Return (found, value) for a JSON path in ``data``."""
    value = data
    for token in parse_json_path(path.removesuffix("?")):
        if isinstance(value, dict) and str(token) in value:
            value = value[str(token)]
        elif isinstance(value, list) and isinstance(token, int) and token < len(value):
            value = value[token]
        else:
            return False, None
    return True, value


# --- Configuration ---------------------------------------------------------------------------------------------------


class ConfigInvalid(ValueError):
    """The connector's config does not follow the schema; ``problems`` names each mistake and where it is."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)  # query parameter → argument
    body: dict[str, str] = field(default_factory=dict)  # body JSON path → argument
    list_path: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # result name or field path → JSON path


@dataclass(frozen=True)
class ObjectConfig:
    read: Endpoint | None
    write: Endpoint | None  # its ``fields``: Steward field path → body JSON path


@dataclass(frozen=True)
class RestConfig:
    auth_header: str
    auth_scheme: str
    honours_idempotency: bool
    idempotency_header: str
    health_check: Endpoint
    objects: dict[str, ObjectConfig]
    operations: dict[str, Endpoint]


class _Checker:
    """Collects every mistake in a config, each with where it is, so an admin fixes them in one go."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, where: str, problem: str) -> None:
        self.problems.append(f"{where}: {problem}")

    def mapping(self, value: Any, where: str, *, required: bool = False) -> dict[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.add(where, "must be an object" if value is not None else "is required")
            return {}
        return value

    def keys(self, value: dict[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        for key in value:
            if key not in allowed:
                self.add(where, f"unknown key {key!r} (allowed: {', '.join(allowed)})")

    def json_path(self, path: Any, where: str, *, body: bool = False) -> None:
        if not isinstance(path, str):
            self.add(where, "must be a JSON path string")
            return
        try:
            tokens = parse_json_path(path.removesuffix("?") if not body else path)
        except ValueError as exc:
            self.add(where, str(exc))
            return
        if body and (not tokens or any(isinstance(t, int) for t in tokens)):
            self.add(where, "a request body path is dotted names only (no list indexes, not empty)")

    def string_map(self, value: Any, where: str) -> dict[str, str]:
        mapping = self.mapping(value, where)
        for key, target in mapping.items():
            if not isinstance(key, str) or not key or not isinstance(target, str):
                self.add(f"{where}.{key}", "must map a non-empty name to a string")
        return {k: v for k, v in mapping.items() if isinstance(v, str)}

    def endpoint(
        self, raw: Any, where: str, *, arguments: tuple[str, ...], default_method: str, kind: str = "operation"
    ) -> Endpoint:
        if not isinstance(raw, dict):
            self.add(where, "is required: an object with at least a path" if raw is None else "must be an object")
            return Endpoint(method=default_method, path="/")
        spec = raw
        self.keys(spec, where, ("method", "path", "query", "body", "list", "fields"))
        method = spec.get("method", default_method)
        method = method.upper() if isinstance(method, str) else method
        if method not in METHODS:
            self.add(f"{where}.method", f"{method!r} is not one of {', '.join(METHODS)}")
        path = spec.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            self.add(f"{where}.path", "is required and starts with / (relative to the connector's base URL)")
            path = "/"
        for name in PLACEHOLDER.findall(path):
            if name not in arguments:
                self.add(f"{where}.path", f"{{{name}}} is not an argument here (arguments: {', '.join(arguments)})")
        if "{" in PLACEHOLDER.sub("", path) or "}" in PLACEHOLDER.sub("", path):
            self.add(f"{where}.path", "placeholders are {name}, with a letter or _ first")
        query = self.string_map(spec.get("query"), f"{where}.query")
        body = self.string_map(spec.get("body"), f"{where}.body")
        for name, argument in [*query.items(), *body.items()]:
            if argument not in arguments:
                self.add(
                    where, f"{argument!r} (for {name!r}) is not an argument here ({', '.join(arguments) or 'none'})"
                )
        for path_in_body in body:
            self.json_path(path_in_body, f"{where}.body.{path_in_body}", body=True)
        fields = self.string_map(spec.get("fields"), f"{where}.fields")
        for name, json_path in fields.items():
            self.json_path(json_path, f"{where}.fields.{name}", body=kind == "write")
        list_path = spec.get("list")
        if list_path is not None:
            self.json_path(list_path, f"{where}.list")
        return Endpoint(
            method=method,
            path=path,
            query=query,
            body=body,
            list_path=list_path if isinstance(list_path, str) else None,
            fields=fields,
        )


def parse_config(raw: Any, *, family: str) -> RestConfig:
    """Validate a REST connector's config for ``family`` and return it typed; raise ConfigInvalid naming every
    mistake."""
    if not isinstance(raw, dict):
        raise ConfigInvalid(["config: must be an object"])
    check = _Checker()
    config = raw
    check.keys(
        config, "config", ("auth", "honours_idempotency", "idempotency_header", "health_check", "objects", "operations")
    )
    auth = check.mapping(config.get("auth"), "auth")
    check.keys(auth, "auth", ("header", "scheme"))
    if auth and not (isinstance(auth.get("header"), str) and auth["header"]):
        check.add("auth.header", "name the header that carries the credential, e.g. Authorization")
    if not isinstance(auth.get("scheme", ""), str):
        check.add("auth.scheme", "must be a string, e.g. Bearer, Token, or empty for the bare credential")
    honours = config.get("honours_idempotency", False)
    if not isinstance(honours, bool):
        check.add("honours_idempotency", "must be true or false")
    idempotency_header = config.get("idempotency_header", IDEMPOTENCY_HEADER)
    if not isinstance(idempotency_header, str):
        check.add("idempotency_header", "must be a header name, or empty to send no key")
    health = check.endpoint(config.get("health_check"), "health_check", arguments=(), default_method="GET")
    objects = {
        name: _object(check, name, spec) for name, spec in check.mapping(config.get("objects"), "objects").items()
    }
    operations: dict[str, Endpoint] = {}
    for name, spec in check.mapping(config.get("operations"), "operations").items():
        operation = OPERATIONS.get(name)
        if operation is None or operation.family != family:
            supported = sorted(op for op, known in OPERATIONS.items() if known.family == family)
            check.add(f"operations.{name}", f"not a {family} operation (these are: {', '.join(supported)})")
            continue
        operations[name] = _operation(check, name, operation, spec)
    if check.problems:
        raise ConfigInvalid(check.problems)
    return RestConfig(
        auth_header=auth.get("header", ""),
        auth_scheme=auth.get("scheme", ""),
        honours_idempotency=bool(honours),
        idempotency_header=idempotency_header if isinstance(idempotency_header, str) else "",
        health_check=health,
        objects=objects,
        operations=operations,
    )


def _object(check: _Checker, name: str, raw: Any) -> ObjectConfig:
    where = f"objects.{name}"
    spec = check.mapping(raw, where, required=True)
    check.keys(spec, where, ("read", "write"))
    read = write = None
    if "read" in spec:
        read = check.endpoint(spec["read"], f"{where}.read", arguments=("id",), default_method="GET")
        if not read.fields:
            check.add(f"{where}.read.fields", "map at least one field")
    if "write" in spec:
        write = check.endpoint(spec["write"], f"{where}.write", arguments=("id",), default_method="PATCH", kind="write")
        if not write.fields:
            check.add(f"{where}.write.fields", "map at least one writable field to its place in the request body")
    if read is None and write is None:
        check.add(where, "give a read, a write or both")
    return ObjectConfig(read=read, write=write)


def _operation(check: _Checker, name: str, operation: Operation, raw: Any) -> Endpoint:
    where = f"operations.{name}"
    endpoint = check.endpoint(
        raw, where, arguments=operation.arguments, default_method="POST" if operation.writes else "GET"
    )
    missing = [result for result in operation.required if result not in endpoint.fields]
    if missing:
        check.add(f"{where}.fields", f"map {', '.join(missing)} to their JSON paths in the answer")
    if operation.known is not None:
        for result in endpoint.fields:
            if result not in operation.known:
                known = ", ".join(operation.known) or "nothing"
                check.add(f"{where}.fields.{result}", f"{name} reads only {known}")
    if operation.is_list and endpoint.list_path is None:
        check.add(f"{where}.list", 'give the JSON path of the list in the answer ("" when the answer is the list)')
    if not operation.is_list and endpoint.list_path is not None:
        check.add(f"{where}.list", f"{name} does not return a list")
    return endpoint
