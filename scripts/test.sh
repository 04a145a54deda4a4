#!/usr/bin/env bash
# Called by `make test` (inside `config.localservices exec`): the suite, then the browser tests in their own pytest
# process (Playwright and pytest-asyncio do not share one well). "No tests collected" (exit 5) alone is not a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

run_pytest() {
  pytest "$@"
  local code=$?
  if [ "$code" -eq 5 ]; then
    echo "(no tests collected for: pytest $*)"
    return 0
  fi
  return "$code"
}

status=0
ruff check --quiet . || { echo "ruff found problems (see above)"; status=1; }
run_pytest -m "not browser" || status=$?
if chromium="$(python -m config.localservices chromium)"; then
  STEWARD_CHROMIUM="$chromium" run_pytest -m browser || status=$?
else
  echo "browser tests not run: no Chromium (see the line above)"
  status=1
fi
exit "$status"
