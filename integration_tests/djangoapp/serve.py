"""Runs the app under Django's own development server on 127.0.0.1:PORT, and
exits when its standard input closes (the test process that started it is
gone):

    DJANGO_SECRET_KEY=... /usr/bin/python3 serve.py PORT
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"


def exit_with_parent():
    sys.stdin.read()
    os._exit(0)


threading.Thread(target=exit_with_parent, daemon=True).start()

from django.core.management import execute_from_command_line  # noqa: E402

execute_from_command_line(["serve.py", "runserver", "--noreload", "127.0.0.1:" + sys.argv[1]])
