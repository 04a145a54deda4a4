from django.urls import path

from agent.console import views

app_name = "console"
urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("<uuid:conversation_id>/", views.conversation_detail, name="detail"),
    path("<uuid:conversation_id>/events.json", views.conversation_events, name="events"),
    path("<uuid:conversation_id>/take-over/", views.conversation_take_over_view, name="take-over"),
    path("<uuid:conversation_id>/hand-back/", views.conversation_hand_back_view, name="hand-back"),
    path("<uuid:conversation_id>/close/", views.conversation_close_view, name="close"),
    path("<uuid:conversation_id>/send/", views.conversation_send_view, name="send"),
    path("approvals/<int:request_id>/approve/", views.approval_approve_view, name="approve"),
    path("approvals/<int:request_id>/reject/", views.approval_reject_view, name="reject"),
]
