"""A throwaway app, installed only by tianmu/test_settings.py, that proves an app plugs in by declaration alone:
a regional (not placed) record kind, notices (通知), with a menu entry, a page of its own and a demo step. No
central file names it; core/tests/test_plug_in.py checks what it gets."""
