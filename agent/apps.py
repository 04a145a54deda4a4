from django.apps import AppConfig


class AgentConfig(AppConfig):
    name = "agent"
    verbose_name = "Agent"

    def ready(self) -> None:
        from agent.approval_outcomes import approval_outcome_listener
        from governance.approvals import APPROVAL_OUTCOME_LISTENERS

        # ready() can run more than once in one process (tests re-populating apps): register the listener once.
        if approval_outcome_listener not in APPROVAL_OUTCOME_LISTENERS:
            APPROVAL_OUTCOME_LISTENERS.append(approval_outcome_listener)

        from agent.readiness import intents_readiness
        from governance.readiness import READINESS_CHECKS

        READINESS_CHECKS["intents"] = intents_readiness

        from django.db.models.signals import post_save
        from helpdesk.models import FollowUp

        from agent.ticket_outcomes import helpdesk_followup_saved

        # The embedded helpdesk's follow-ups carry its tickets' outcomes (agent/ticket_outcomes.py); dispatch_uid
        # keeps one connection however often ready() runs.
        post_save.connect(helpdesk_followup_saved, sender=FollowUp, dispatch_uid="agent.ticket_outcomes.followup")
