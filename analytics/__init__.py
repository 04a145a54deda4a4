"""Events, metrics and their rollups, the dashboard, QA review and scorecards, CSAT."""
