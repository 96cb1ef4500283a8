"""A legacy Flask app that shares its session cookie with the gateway.

Started by the integration tests with Debian's python3 and python3-flask:

    FLASK_SECRET_KEY=... FLASK_SECRET_KEY_FALLBACKS=old1,old2 /usr/bin/python3 app.py PORT
"""

import os
import sys

from flask import Flask, flash, get_flashed_messages, jsonify, request, session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class RotatingSessionInterface(SecureCookieSessionInterface):
    """Flask 3.1's SECRET_KEY_FALLBACKS on Debian's Flask 2.2: itsdangerous
    signs with the last key of the list and verifies with all of them."""

    def get_signing_serializer(self, app):
        if not app.secret_key:
            return None
        keys = [*app.config["SECRET_KEY_FALLBACKS"], app.secret_key]
        return URLSafeTimedSerializer(
            keys,
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method},
        )


app = Flask(__name__)
app.secret_key = os.environ["FLASK_SECRET_KEY"]
app.config["SECRET_KEY_FALLBACKS"] = [k for k in os.environ.get("FLASK_SECRET_KEY_FALLBACKS", "").split(",") if k]
app.session_interface = RotatingSessionInterface()


@app.route("/flask/login")
def login():
    session["user"] = request.args["user"]
    flash("welcome")
    return "logged in"


@app.route("/flask/whoami")
def whoami():
    return jsonify(user=session.get("user"), cart=session.get("cart"), keys=sorted(session.keys()))


@app.route("/flask/flashes")
def flashes():
    return jsonify(get_flashed_messages(with_categories=True))


@app.route("/flask/logout")
def logout():
    session.clear()
    return "logged out"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]))
