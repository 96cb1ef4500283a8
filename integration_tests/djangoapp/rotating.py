"""Django's signed_cookies session backend with SECRET_KEY_FALLBACKS, as
Django 4.1 reads them, on Debian's Django 3.2: the cookie is signed with
SECRET_KEY and read with it or any fallback."""

from django.conf import settings
from django.contrib.sessions.backends import signed_cookies
from django.core import signing


class SessionStore(signed_cookies.SessionStore):
    def load(self):
        for key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
            try:
                return signing.loads(
                    self.session_key,
                    key=key,
                    serializer=self.serializer,
                    max_age=self.get_session_cookie_age(),
                    salt="django.contrib.sessions.backends.signed_cookies",
                )
            except Exception:
                continue
        self.create()
        return {}
