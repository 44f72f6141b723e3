"""Settings for the test suite: the real settings plus apps that exist only to be tested, such as the
throwaway notices app that proves an app plugs in by declaration (core/tests/notices/). The browser tests
start their server with tianmu.settings, so they never see these."""

from .settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tianmu.core.tests.notices"]  # noqa: F405

