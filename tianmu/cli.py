"""The `tianmu` command: Django's management commands with Tianmu's settings.

    tianmu demo [--no-serve]   build the Lin'an demo and serve it
    tianmu run                 web server + workers under one supervisor
    tianmu migrate | createsuperuser | shell | …
"""

import os
import sys


def main(argv=None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tianmu.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["tianmu", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
