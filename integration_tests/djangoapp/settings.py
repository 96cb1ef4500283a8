"""Settings of a legacy Django app that shares its session cookie with the
gateway: the signed_cookies backend, SECRET_KEY from the environment."""

import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
# Django 4.1's setting, read here by rotating.SessionStore (Debian 12 ships
# Django 3.2, which has no fallbacks of its own).
SECRET_KEY_FALLBACKS = [k for k in os.environ.get("DJANGO_SECRET_KEY_FALLBACKS", "").split(",") if k]
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "views"
INSTALLED_APPS = ["django.contrib.sessions"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
SESSION_ENGINE = "rotating"  # django.contrib.sessions.backends.signed_cookies, with fallbacks
SESSION_COOKIE_AGE = 14 * 24 * 3600  # Django's default: the gateway's lifetime 14d
DATABASES = {}
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"}}
