#!/usr/bin/python3
"""Known-answer vectors for the django codec, made by real Django.

Run with Debian's own python3 and python3-django (3.2 on Debian 12):

    /usr/bin/python3 sessioncore/codecs/django/testdata/make_vectors.py > sessioncore/codecs/django/testdata/vectors.json

The clock is pinned, so the output is reproducible. Every valid cookie comes
from a real Django view through SessionMiddleware and the signed_cookies
backend; the broken ones are signed with django.core.signing as the backend
would sign them. Each vector records what the gateway must make of it
("expect") and what Django itself made of it ("django": "valid" when
SessionStore(cookie).load() returned the session, "rejected" when it gave an
empty one), so the two can only differ where a vector says why.
"""

import base64
import json
import sys
import warnings
import zlib

import django
from django.conf import settings

SECRET = "django-secret-for-vectors"
OLD_SECRET = "old-django-secret-for-vectors"
SALT = "django.contrib.sessions.backends.signed_cookies"
TS = 1700000000  # 2023-11-14T22:13:20Z
AGE = 1209600  # SESSION_COOKIE_AGE, Django's default (two weeks)

settings.configure(
    SECRET_KEY=SECRET,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    SESSION_COOKIE_AGE=AGE,
    USE_TZ=True,
)
warnings.simplefilter("ignore")  # DEFAULT_HASHING_ALGORITHM's deprecation
django.setup()

from django.contrib.sessions.backends.signed_cookies import SessionStore  # noqa: E402
from django.core import signing  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402


class Clock:
    """time.time() for django.core.signing and the session middleware."""

    now = TS

    def time(self):
        return self.now


clock = Clock()
signing.time = clock
import django.contrib.sessions.middleware as middleware  # noqa: E402

middleware.time = clock

fill = None


def view(request):
    fill(request.session)
    return HttpResponse("ok")


urlpatterns = [path("", view)]


def django_cookie(filler, **overrides):
    """The sessionid cookie a Django view that runs filler(session) sets, and
    its Max-Age ("" when it has none: a browser-session cookie)."""
    global fill
    fill = filler
    with override_settings(**overrides):
        resp = Client().get("/")
    morsel = resp.cookies["sessionid"]
    return morsel.value, str(morsel["max-age"])


def django_opens(cookie, now, secret=SECRET):
    """Whether Django itself opens cookie at now: the session, or None."""
    clock.now = now
    try:
        with override_settings(SECRET_KEY=secret):
            store = SessionStore(cookie)
            session = store.load()
    finally:
        clock.now = TS
    # load() gives {} for a cookie it rejects, and then marks the session
    # modified (create()), to set a new cookie.
    return None if store.modified or not isinstance(session, dict) else session


def payload_json(cookie):
    """The JSON text inside a cookie, inflated when compressed."""
    payload = cookie.rsplit(":", 2)[0]
    compressed = payload.startswith(".")
    raw = signing.b64_decode(payload.lstrip(".").encode())
    return (zlib.decompress(raw) if compressed else raw).decode("latin-1")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(payload, secret=SECRET, salt=SALT, timed=True, algorithm="sha256"):
    cls = signing.TimestampSigner if timed else signing.Signer
    return cls(secret, salt=salt, algorithm=algorithm).sign(payload)


def setter(**values):
    def filler(session):
        for k, v in values.items():
            session[k] = v
    return filler


def expiry(value):
    def filler(session):
        session["user"] = "alice"
        session.set_expiry(value)
    return filler


vectors = []


def add(name, cookie, expect, secret=SECRET, fallbacks=(), now=TS, max_age="", why=""):
    opened = django_opens(cookie, now, secret)
    if opened is None:
        for fb in fallbacks:
            opened = opened or django_opens(cookie, now, fb)
    v = dict(name=name, secret=secret, fallbacks=list(fallbacks), cookie=cookie, now=now, max_age=AGE,
             expect=expect, django="valid" if opened is not None else "rejected")
    if expect == "valid":
        v["payload_json"] = payload_json(cookie)
        v["cookie_max_age"] = max_age
        assert opened == json.loads(v["payload_json"]), (name, opened)
    if why:
        v["why"] = why
    elif (expect == "valid") != (opened is not None):
        raise SystemExit("%s: the gateway would say %s, Django %s" % (name, expect, v["django"]))
    vectors.append(v)


def valid(name, made, **kw):
    cookie, max_age = made
    add(name, cookie, "valid", max_age=max_age, **kw)


simple = django_cookie(setter(user="alice", user_id=42))
valid("simple", simple)
valid("login", django_cookie(setter(_auth_user_id="1", _auth_user_backend="django.contrib.auth.backends.ModelBackend",
                                    _auth_user_hash="f" * 64)))
valid("json_scalars", django_cookie(setter(f=2.0, small=1e-07, big=18446744073709551617, neg=-3, t=True, f2=False, n=None, s="")))
valid("key_order", django_cookie(setter(**{"b": 1, "a": 2, "A": 3, "_x": 4, "a1": 5, "ä": 6})))
valid("unicode", django_cookie(setter(name="Zoë 😀 中文", ctl="tab\there\x7f", slash="a/b", q='"\\')))
valid("nested", django_cookie(setter(a={"b": {"c": [1, {"d": 2}]}}, l=[[], {}])))
valid("tuple_is_a_list", django_cookie(setter(t=(1, 2, "x"))))
valid("compressed", django_cookie(setter(k="a" * 500, user="alice")))
valid("compress_threshold_below", django_cookie(setter(k="a" * 11)))
valid("compress_threshold_at", django_cookie(setter(k="a" * 12)))
valid("unicode_secret", django_cookie(setter(user="alice"), SECRET_KEY="sécret-ключ-🔑"), secret="sécret-ключ-🔑")
valid("fallback_key", django_cookie(setter(user="bob"), SECRET_KEY=OLD_SECRET), fallbacks=[OLD_SECRET])
valid("fallback_key_compressed", django_cookie(setter(user="bob", k="b" * 300), SECRET_KEY=OLD_SECRET), fallbacks=[OLD_SECRET])
valid("legacy_sha1", django_cookie(setter(user="carol"), DEFAULT_HASHING_ALGORITHM="sha1"))
valid("legacy_sha1_fallback", django_cookie(setter(user="carol"), SECRET_KEY=OLD_SECRET, DEFAULT_HASHING_ALGORITHM="sha1"),
      fallbacks=[OLD_SECRET])
valid("expiry_seconds", django_cookie(expiry(300)))
valid("expiry_browser_session", django_cookie(expiry(0)))
valid("expiry_none", django_cookie(expiry(None)))
valid("age_equals_max_age", simple, now=TS + AGE)
valid("future_within_skew", simple, now=TS - 30)
valid("empty_object", (sign(b64(b"{}")), ""))

add("expired", simple[0], "expired", now=TS + AGE + 1)
add("future_timestamp", simple[0], "expired", now=TS - 3600,
    why="Django accepts a timestamp from any future; the gateway, a minute of clock skew")
add("tampered_payload", "X" + simple[0][1:], "bad_signature")
add("tampered_signature", simple[0][:-2] + ("AA" if not simple[0].endswith("AA") else "BB"), "bad_signature")
add("tampered_timestamp", simple[0].replace(":" + simple[0].split(":")[1] + ":", ":" + signing.baseconv.base62.encode(TS + 1) + ":"),
    "bad_signature")
add("wrong_secret", simple[0], "bad_signature", secret="another-secret")
add("fallback_not_configured", django_cookie(setter(user="bob"), SECRET_KEY=OLD_SECRET)[0], "bad_signature")
add("wrong_salt", signing.dumps({"user": "mallory"}, key=SECRET, compress=True), "bad_signature")
add("wrong_salt_cookie_signer", signing.get_cookie_signer(salt="sessionid").sign(b64(b'{"user":"mallory"}')), "bad_signature")
add("sha512_signature", sign(b64(b'{"user":"mallory"}'), algorithm="sha512"), "bad_signature")
add("no_separator", "nocolonsatall", "bad_signature")
add("empty_value", "", "new")
add("missing_timestamp", sign(b64(b'{"a":1}'), timed=False), "bad_signature")
add("malformed_timestamp", sign(b64(b'{"a":1}') + ":!!", timed=False), "bad_signature")
add("signed_invalid_json", sign(b64(b"{not json")), "undecodable")
add("signed_non_object", sign(b64(b'"str"')), "undecodable")
add("signed_bad_zlib", sign("." + b64(b"\x78\x9cgarbage")), "undecodable")
add("signed_not_base64", sign("@@@@"), "undecodable")
add("nan", django_cookie(setter(x=float("nan")))[0], "undecodable",
    why="Python's json writes and reads NaN, which is not JSON")

json.dump({"django": django.get_version(), "salt": SALT, "vectors": vectors}, sys.stdout, indent=1, ensure_ascii=False)
sys.stdout.write("\n")
