"""The database refuses UPDATE and DELETE on audit records; the staff role groups are created."""

from django.db import migrations

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION governance_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only: % refused on governance_auditrecord', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER governance_audit_append_only
    BEFORE UPDATE OR DELETE ON governance_auditrecord
    FOR EACH ROW EXECUTE FUNCTION governance_audit_append_only();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS governance_audit_append_only ON governance_auditrecord;
DROP FUNCTION IF EXISTS governance_audit_append_only();
"""


def create_roles(apps, schema_editor):
    from governance.roles import sync_roles

    sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunSQL(APPEND_ONLY, DROP_APPEND_ONLY),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
