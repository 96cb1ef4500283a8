"""A Flask app behind the session gateway (examples/flask/Caddyfile).

The session arrives as JSON in the X-Session request header; the app
changes it by answering with X-Session-Update (a JSON merge patch) or
X-Session-Replace. Flask's own session, its cookie and SECRET_KEY are not
used. (To share Flask's own session cookie with the gateway instead, see
`codec flask` in the README.)

    python3 app.py [PORT]    # or: gunicorn -b 127.0.0.1:5000 app:app
"""

import json
import sys

from flask import Flask, abort, make_response, redirect, render_template_string, request

app = Flask(__name__)


def gateway_session():
    return json.loads(request.headers.get("X-Session", "{}"))


PAGE = """<!doctype html>
<title>Flask behind the session gateway</title>
{% if user %}
<p>Hello, {{ user }}! Visits: {{ visits }}</p>
<form method="post" action="/logout"><button>Log out</button></form>
{% else %}
<p>Hello, stranger. Visits: {{ visits }}</p>
<form method="post" action="/login"><input name="user" required> <button>Log in</button></form>
{% endif %}
"""


@app.get("/")
def index():
    session = gateway_session()
    visits = session.get("visits", 0) + 1
    resp = make_response(render_template_string(PAGE, user=session.get("user"), visits=visits))
    resp.headers["X-Session-Update"] = json.dumps({"visits": visits})
    return resp


@app.post("/login")
def login():
    user = request.form.get("user", "").strip()
    if not user:
        abort(400)
    # Log in: a permanent session, under a new ID (against session fixation).
    resp = redirect("/", 303)
    resp.headers["X-Session-Update"] = json.dumps({"user": user, "_permanent": True})
    resp.headers["X-Session-Renew"] = "true"
    return resp


@app.post("/logout")
def logout():
    resp = redirect("/", 303)
    resp.headers["X-Session-Replace"] = "{}"  # an empty session deletes the cookie
    return resp


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
