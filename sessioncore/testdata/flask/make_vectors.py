#!/usr/bin/python3
"""Known-answer vectors for the flask codec, made by real Flask.

Run with Debian's own python3 and python3-flask (2.2.2 on Debian 12):

    /usr/bin/python3 sessioncore/testdata/flask/make_vectors.py > sessioncore/testdata/flask/vectors.json

The clock is pinned, so the output is reproducible. Every cookie comes from a
real Flask view through Flask's own SecureCookieSessionInterface, except the
signed-but-broken ones, which are signed with itsdangerous exactly as Flask
would sign them.
"""

import base64
import hashlib
import json
import sys
import uuid
import zlib
from datetime import datetime, timezone

import flask
import itsdangerous
from itsdangerous import Signer, TimestampSigner
from markupsafe import Markup

TS = 1700000000  # 2023-11-14T22:13:20Z
MAX_AGE = 31 * 24 * 3600
SECRET = "dev-secret-for-vectors"
OLD_SECRET = "old-secret-for-vectors"

itsdangerous.timed.TimestampSigner.get_timestamp = lambda self: TS


def flask_cookie(fill, secret=SECRET):
    """The session cookie a Flask view that runs fill(session) sets."""
    app = flask.Flask("vectors")
    app.secret_key = secret

    @app.route("/")
    def view():
        fill(flask.session)
        return "ok"

    with app.test_client() as client:
        resp = client.get("/")
    for line in resp.headers.getlist("Set-Cookie"):
        name, _, rest = line.partition("=")
        if name == "session":
            return rest.split(";", 1)[0]
    raise SystemExit("no session cookie")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signer(secret, timed=True):
    cls = TimestampSigner if timed else Signer
    return cls(secret, salt="cookie-session", key_derivation="hmac", digest_method=hashlib.sha1)


def payload_json(cookie):
    """The JSON text inside a cookie, inflated when compressed."""
    payload = cookie.rsplit(".", 2)[0]
    compressed = payload.startswith(".")
    raw = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload.lstrip(".")) % 4))
    return (zlib.decompress(raw) if compressed else raw).decode()


def setter(**values):
    def fill(session):
        for k, v in values.items():
            session[k] = v
    return fill


def permanent(value):
    def fill(session):
        session["user"] = "alice"
        session.permanent = value
    return fill


def flashes(session):
    flask.flash("hello")
    flask.flash("bad things", "error")


vectors = []


def valid(name, cookie, secret=SECRET, fallbacks=(), now=TS):
    vectors.append(dict(name=name, secret=secret, fallbacks=list(fallbacks), cookie=cookie,
                        now=now, max_age=MAX_AGE, expect="valid", payload_json=payload_json(cookie)))


def rejected(name, cookie, expect, secret=SECRET, fallbacks=(), now=TS):
    vectors.append(dict(name=name, secret=secret, fallbacks=list(fallbacks), cookie=cookie,
                        now=now, max_age=MAX_AGE, expect=expect))


simple = flask_cookie(setter(name="alice", user_id=42))
valid("simple", simple)
valid("json_scalars", flask_cookie(setter(f=2.0, small=1e-07, big=18446744073709551617, neg=-3, t=True, f2=False, n=None, s="")))
valid("key_order", flask_cookie(setter(**{"b": 1, "a": 2, "A": 3, "_x": 4, "a1": 5, "ä": 6})))
valid("unicode", flask_cookie(setter(name="Zoë 😀 中文", ctl="tab\there\x7f")))
valid("nested", flask_cookie(setter(a={"b": {"c": [1, {"d": 2}]}}, l=[[], {}])))
valid("tuple", flask_cookie(setter(t=(1, 2, "x"))))
valid("bytes", flask_cookie(setter(b=b"\xff\x00ab")))
valid("markup", flask_cookie(setter(m=Markup("<b>hi</b>"))))
valid("uuid", flask_cookie(setter(u=uuid.UUID("12345678-1234-5678-1234-567812345678"))))
valid("datetime", flask_cookie(setter(d=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc))))
valid("tag_escape", flask_cookie(setter(x={" t": "x"}, y={" t__": "y"}, z={" di": " di"})))
valid("toplevel_tag_key", flask_cookie(setter(**{" t": [1, 2]})))
valid("flashes", flask_cookie(flashes))
valid("permanent", flask_cookie(permanent(True)))
valid("permanent_false", flask_cookie(permanent(False)))
valid("large_compressible", flask_cookie(setter(k="a" * 500, user="alice")))
valid("compress_threshold_below", flask_cookie(setter(k="a" * 11)))
valid("compress_threshold_at", flask_cookie(setter(k="a" * 12)))
valid("unicode_secret", flask_cookie(setter(user="alice"), secret="sécret-ключ-🔑"), secret="sécret-ключ-🔑")
valid("fallback_key", flask_cookie(setter(user="bob"), secret=OLD_SECRET), fallbacks=[OLD_SECRET])
valid("age_equals_max_age", simple, now=TS + MAX_AGE)
valid("empty_object", signer(SECRET).sign(b64(b"{}")).decode())

rejected("nonpermanent_also_checked", simple, "expired", now=TS + MAX_AGE + 1)
rejected("expired_permanent", flask_cookie(permanent(True)), "expired", now=TS + MAX_AGE + 1)
rejected("future_timestamp", simple, "expired", now=TS - 3600)
rejected("tampered_payload", "X" + simple[1:], "bad_signature")
rejected("tampered_signature", simple[:-2] + ("AA" if not simple.endswith("AA") else "BB"), "bad_signature")
rejected("wrong_secret", simple, "bad_signature", secret="another-secret")
rejected("no_separator", "nodotsatall", "bad_signature")
rejected("missing_timestamp", signer(SECRET, timed=False).sign(b64(b'{"a":1}')).decode(), "bad_signature")
rejected("empty_value", "", "new")
rejected("fallback_not_configured", flask_cookie(setter(user="bob"), secret=OLD_SECRET), "bad_signature")
rejected("signed_invalid_json", signer(SECRET).sign(b64(b"{not json")).decode(), "undecodable")
rejected("signed_non_object", signer(SECRET).sign(b64(b'"str"')).decode(), "undecodable")
rejected("signed_bad_zlib", signer(SECRET).sign("." + b64(b"\x78\x9cgarbage")).decode(), "undecodable")

json.dump({"flask": flask.__version__, "itsdangerous": itsdangerous.__version__, "vectors": vectors},
          sys.stdout, indent=1, ensure_ascii=False)
sys.stdout.write("\n")
