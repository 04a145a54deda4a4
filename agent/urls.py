from django.urls import path

from agent.api import ConversationStartApi, ConversationStatusApi

app_name = "chat"
urlpatterns = [
    path("conversations/", ConversationStartApi.as_view(), name="conversation-start"),
    path("conversations/<str:conversation_id>/", ConversationStatusApi.as_view(), name="conversation-status"),
]
