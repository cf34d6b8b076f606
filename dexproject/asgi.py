"""ASGI entry point: Django over HTTP, live updates over websockets (`paper_trading.realtime`)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dexproject.settings")
# Set Django up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.routing import (  # type: ignore[import-untyped, unused-ignore]  # noqa: E402
    ProtocolTypeRouter,
    URLRouter,
)
from channels.security.websocket import (  # type: ignore[import-untyped, unused-ignore]  # noqa: E402
    AllowedHostsOriginValidator,
)

from paper_trading.realtime.auth import TokenOrSessionAuthMiddlewareStack  # noqa: E402
from paper_trading.realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Websockets: only from this site's own pages (Origin in ALLOWED_HOSTS), then who it is.
        "websocket": AllowedHostsOriginValidator(
            TokenOrSessionAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
