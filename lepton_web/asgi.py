import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton_web.settings")
application = get_asgi_application()

from apps.core.webserver import require_collected_static  # noqa: E402 (needs the apps loaded)

require_collected_static()  # DEBUG off and no collectstatic: fail now, not with a 500 on every page
