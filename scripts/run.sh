#!/usr/bin/env bash
# Called by `make run` (inside `config.localservices exec`, so DATABASE_URL and Redis are up): prepare the database
# and the demo company, then run daphne, a Celery worker and beat under honcho until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export DEBUG="${DEBUG:-true}"
export STEWARD_HOST="${STEWARD_HOST:-127.0.0.1}"
export STEWARD_PORT="${STEWARD_PORT:-8000}"
export SITE_URL="${SITE_URL:-http://$STEWARD_HOST:$STEWARD_PORT}"

python manage.py check --fail-level ERROR >/dev/null
python manage.py migrate --noinput -v 0 && echo "database: migrations applied"
# The demo company, and on the first start 14 days of demo traffic played through the turn loop (about a minute;
# later starts keep it: --if-absent). `manage.py seed_demo --remove-traffic` deletes it.
python manage.py seed_demo --traffic 14 --if-absent
python manage.py ensure_admin
python manage.py collectstatic --noinput -v 0

base="http://$STEWARD_HOST:$STEWARD_PORT"
cat <<MSG

Steward is starting (Ctrl-C stops everything):
  chat demo page  $base/
  admin           $base/admin/
  handoff console $base/console/
  QA review       $base/qa/
  dashboard       $base/dashboard/   (ROI: $base/dashboard/roi/)
  helpdesk        $base/helpdesk/
  health          $base/healthz
  API docs        $base/api/docs/

MSG
exec honcho start -f Procfile
