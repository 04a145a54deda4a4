"""Routes of the helpdesk webhooks (agent.webhooks), under /api/hooks/."""

from django.urls import path

from agent.webhooks import webhook_receive

app_name = "hooks"
urlpatterns = [
    path("<slug:connector_key>/", webhook_receive, name="signed"),
    path("<slug:connector_key>/<str:token>/", webhook_receive, name="token"),
]
