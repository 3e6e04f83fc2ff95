from django.urls import path

from apps.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    *[path(f"{section}/", views.upcoming, {"section": section}, name=section) for section in views.UPCOMING_SECTIONS],
]
