from django.urls import path

from qa import views

app_name = "qa"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("items/<int:item_id>/", views.item_detail, name="item"),
    path("items/<int:item_id>/review/", views.item_review, name="review"),
    path("items/<int:item_id>/settle/", views.item_settle, name="settle"),
    path("calibration/", views.calibration_view, name="calibration"),
    path("reviews/<int:review_id>/fix-request/", views.fix_request_form, name="fix-request"),
    path("reviews/<int:review_id>/regression-case/", views.regression_case_form, name="regression-case"),
    path("flag/<uuid:conversation_id>/", views.flag, name="flag"),
]
