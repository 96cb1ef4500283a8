"""The legacy Django app's views: log in (writes the session), read it,
choose its expiry, log out (flushes it)."""

import json

from django.http import HttpResponse, JsonResponse
from django.urls import path


def login(request):
    request.session["user"] = request.GET["user"]
    # Values whose JSON text only Python writes so: the gateway must hand
    # them back as they are.
    request.session["ratio"] = 2.0
    request.session["big"] = 18446744073709551617
    request.session["name"] = "Zo\u00eb"
    return HttpResponse("logged in")


def whoami(request):
    # The session's own JSON, as JSONSerializer writes it, in Django's order.
    return HttpResponse(json.dumps(dict(request.session.items()), separators=(",", ":")), content_type="application/json")


def remember(request):
    request.session.set_expiry(int(request.GET["seconds"]))
    return HttpResponse("ok")


def logout(request):
    request.session.flush()
    return HttpResponse("logged out")


urlpatterns = [
    path("django/login", login),
    path("django/whoami", whoami),
    path("django/remember", remember),
    path("django/logout", logout),
]
