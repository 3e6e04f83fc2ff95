import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton_web.settings")
application = get_wsgi_application()

from apps.core.webserver import require_collected_static  # noqa: E402 (needs the apps loaded)

require_collected_static()  # DEBUG off and no collectstatic: fail now, not with a 500 on every page
