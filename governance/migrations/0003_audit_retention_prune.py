"""Audit records may be deleted by retention, and only by it: a DELETE passes the append-only trigger when its
transaction has run ``SET LOCAL steward.audit_prune = 'on'`` (governance.retention does, for the oldest records
only). UPDATE is still always refused.

This guards against accidental deletes (an ORM cascade, an admin bulk delete, a stray script), not against a
database role that can also drop the trigger: the hash chain and ``audit_verify`` are what detect that.
"""

from django.db import migrations

PRUNE_ALLOWED = """
CREATE OR REPLACE FUNCTION governance_audit_append_only() RETURNS trigger AS $$
BEGIN
    -- current_setting(name, missing_ok => true) is NULL when the setting was never made in this session.
    IF TG_OP = 'DELETE' AND current_setting('steward.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit records are append-only: % refused on governance_auditrecord', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION governance_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only: % refused on governance_auditrecord', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0002_audit_append_only_and_roles"),
    ]

    operations = [
        migrations.RunSQL(PRUNE_ALLOWED, APPEND_ONLY),
    ]
