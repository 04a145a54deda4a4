from django.urls import path

from agent.api import ConversationStartApi

app_name = "chat"
urlpatterns = [
    path("conversations/", ConversationStartApi.as_view(), name="conversation-start"),
]
