"""Roles and scopes, field mappings, action policies and approvals, escalation rules, rollout gates, the audit log, PII
masking and the readiness report.
"""
