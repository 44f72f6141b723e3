from django.urls import path

from . import views

app_name = "comms"

urlpatterns = [
    path("board/", views.board_page, name="board"),
    path("inbox/", views.inbox_page, name="inbox"),
    path("deliveries/<int:pk>/confirm/", views.confirm_view, name="confirm"),
    path("dispatches/", views.dispatch_list, name="dispatches"),
    path("dispatches/new/", views.dispatch_new, name="dispatch_new"),
    path("dispatches/<int:pk>/", views.dispatch_detail, name="dispatch"),
    path("dispatches/<int:pk>/cancel/", views.dispatch_cancel, name="dispatch_cancel"),
    path("c/<str:token>/", views.link_page, name="link"),
]
