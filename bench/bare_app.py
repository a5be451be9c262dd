"""A bare Django ASGI app with one JSON view: the baseline of bench/webhook_accept.py.

It does what any Django JSON endpoint must (parse the body, build a JSON response) and nothing
the product does (no database, no validation, no hand-off), served by the same ASGI servers as
the product, so the difference between the two is the product's own cost.
Serve it with e.g. ``uvicorn bench.bare_app:application`` from the project folder.
"""

from __future__ import annotations

import json
import uuid

import django
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def accept(request: HttpRequest) -> JsonResponse:
    """Parse the JSON body and answer 202 with an id, like the webhook's accepted response."""
    payload = json.loads(request.body)
    return JsonResponse(
        {"success": True, "webhook_id": str(uuid.uuid4()), "fields": sorted(payload)}, status=202
    )


urlpatterns = [path("api/webhook", accept)]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only-not-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        USE_TZ=True,
    )
    django.setup()

application = get_asgi_application()
