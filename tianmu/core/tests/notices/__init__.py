"""A throwaway app, installed only by tianmu/test_settings.py, that proves an app plugs in by declaration alone:
a regional (not placed) record kind, notices (通知), with a menu entry, a page of its own and a demo step. No
central file names it; core/tests/test_plug_in.py checks what it gets.

It has a migration (made with `DJANGO_SETTINGS_MODULE=tianmu.test_settings tianmu makemigrations notices`):
Django creates an unmigrated app's tables before running migrations, so on PostgreSQL the foreign keys to
core's users and regions would point at tables that do not exist yet."""
