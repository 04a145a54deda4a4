"""Connectors' lines of the readiness report (governance.readiness), registered by ConnectorsConfig.ready().

Hand-over needs the primary helpdesk connector: configured, enabled, its adapter installed, its last call not failing,
and somewhere to file tickets — for the embedded helpdesk, the queues of the ticket schema (connectors.helpdesk_schema).
Outside helpdesks keep their queues themselves: their health shows in the connector's last calls. Nothing here calls
out or reads a secret.
"""

from __future__ import annotations

from connectors.base import ADAPTERS
from connectors.helpdesk_schema import QUEUES
from connectors.models import Connector, Family
from governance.readiness import ReadinessLine, Status, admin_url

SECTION = "Handoff"
CONNECTOR_TITLE = "The helpdesk connector is configured and enabled"
QUEUES_TITLE = "The helpdesk has the queues escalations are routed to"
EMBEDDED = "helpdesk_embedded"


def helpdesk_readiness() -> list[ReadinessLine]:
    """Report on the primary helpdesk connector and its queues: two queries at most."""
    connector = Connector.objects.filter(family=Family.HELPDESK, is_primary=True).first()
    if connector is None:
        detail = "No primary helpdesk connector: escalations cannot be filed as tickets. Add one (or run seed_demo)."
        return [
            ReadinessLine(SECTION, CONNECTOR_TITLE, Status.FAIL, detail, admin_url(Connector)),
            ReadinessLine(
                SECTION, QUEUES_TITLE, Status.FAIL, "No helpdesk connector, so no queues.", admin_url(Connector)
            ),
        ]
    return [_connector_line(connector), _queues_line(connector)]


def _connector_line(connector: Connector) -> ReadinessLine:
    url = admin_url(Connector, [connector.pk])
    if not connector.enabled:
        detail = f"{connector}: disabled" + (f" ({connector.disabled_reason})" if connector.disabled_reason else "")
    elif connector.adapter not in ADAPTERS:
        detail = f"{connector}: its adapter {connector.adapter!r} is not installed"
    elif connector.consecutive_failures:
        detail = f"{connector}: its last {connector.consecutive_failures} calls failed ({connector.last_error[:200]})"
    else:
        return ReadinessLine(SECTION, CONNECTOR_TITLE, Status.PASS, f"{connector} ({connector.adapter}).", url)
    return ReadinessLine(SECTION, CONNECTOR_TITLE, Status.FAIL, detail + ".", url)


def _queues_line(connector: Connector) -> ReadinessLine:
    if connector.adapter != EMBEDDED:
        detail = f"{connector} keeps its own queues; its health check reaches them."
        return ReadinessLine(SECTION, QUEUES_TITLE, Status.PASS, detail, admin_url(Connector, [connector.pk]))
    from helpdesk.models import Queue

    existing = set(Queue.objects.filter(slug__in=QUEUES).values_list("slug", flat=True))
    missing = [slug for slug in QUEUES if slug not in existing]
    url = admin_url(Queue)
    if missing:
        detail = (
            f"Missing queues: {', '.join(missing)}; run connectors.helpdesk_schema.ensure_helpdesk_schema() "
            "(manage.py seed_demo does)."
        )
        return ReadinessLine(SECTION, QUEUES_TITLE, Status.FAIL, detail, url)
    return ReadinessLine(SECTION, QUEUES_TITLE, Status.PASS, f"All {len(QUEUES)} queues exist.", url)
