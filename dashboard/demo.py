"""The demo company's costs, so the ROI view computes from the demo traffic on a fresh `make run` (docs/roi.md).

Brewline's own figures, written for the demo: a human-handled chat costs about what a few minutes of a support
person's loaded time does, the model costs cents a conversation. Seeded once: a support admin's later edit stays.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model

from dashboard.models import CostSettings
from governance.changes import config_object_save

DEMO_COSTS = {
    "currency": "GBP",
    "human_contact_cost": Decimal("4.80"),
    "agent_minute_cost": Decimal("0.60"),
    "minutes_per_human_contact": Decimal("8"),
    "model_cost_per_conversation": Decimal("0.04"),
    "monthly_running_cost": Decimal("250.00"),
    "setup_cost": Decimal("3000.00"),
    "default_minutes_saved_per_action": Decimal("3"),
}


def seed_costs() -> dict[str, int]:
    """Create the cost settings unless they exist; return {"cost settings": created}."""
    if CostSettings.current() is not None:
        return {"cost settings": 0}
    owner = get_user_model().objects.filter(username="maya.ops").first()  # seed_governance's support admin
    config_object_save(actor=owner, instance=CostSettings(**DEMO_COSTS), reason="demo company costs")
    return {"cost settings": 1}
