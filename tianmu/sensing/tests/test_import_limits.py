"""The readings CSV import refuses, before checking any row, a file over the size limit, a line over the length
limit or more rows than allowed (TIANMU_CSV_IMPORT_*, core/sheets.py), and lists only the first errors of a bad
file while counting them all (issue 8)."""

from __future__ import annotations

from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile

from tianmu.sensing.models import Reading

API = "/api/v1/sensing"
M = timedelta(minutes=1)


def _csv(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("h.csv", text.encode(), content_type="text/csv")


def _post(client, text: str) -> dict:
    r = client.post(f"{API}/readings/import", {"file": _csv(text), "dry_run": "false"})
    assert r.status_code == 200
    return r.json()


def _refused(report: dict, *words, row=None):
    assert not report["ok"] and report["rows"] == 0 and report["error_count"] == 1, report
    error = report["errors"][0]
    assert all(w in error["message"] for w in words) and error["row"] == row, error
    assert error["message_en"] != error["message"]
    assert Reading.objects.count() == 0


def _good(t0, n: int) -> str:
    return "sensor,ts,value\n" + "".join(f"RG-A,{(t0 - (i + 1) * M).isoformat()},0.5\n" for i in range(n))


def test_a_file_over_the_size_limit_is_refused_unread(world, net, t0, client, settings):
    client.force_login(world["users"]["town_staff"])
    settings.TIANMU_CSV_IMPORT_MAX_BYTES = 1024 * 1024
    _refused(_post(client, _good(t0, 1) + "#" * (1024 * 1024)), "1 MiB")


def test_a_line_over_the_length_limit_is_refused_with_its_number(world, net, t0, client, settings):
    client.force_login(world["users"]["town_staff"])
    settings.TIANMU_CSV_IMPORT_MAX_LINE_CHARS = 100
    _refused(_post(client, _good(t0, 3) + "RG-A," + "9" * 200 + ",1\n"), "100", row=5)


def test_too_many_rows_are_refused_before_any_row_is_checked(world, net, t0, client, settings):
    client.force_login(world["users"]["town_staff"])
    settings.TIANMU_CSV_IMPORT_MAX_ROWS = 3
    _refused(_post(client, _good(t0, 4)), "3")
    report = _post(client, _good(t0, 3) + "\n\n")  # blank lines are not rows
    assert report["ok"] and report["created"] == 3


def test_a_bad_file_lists_the_first_errors_and_counts_them_all(world, net, t0, client, settings):
    client.force_login(world["users"]["town_staff"])
    settings.TIANMU_IMPORT_MAX_ERRORS = 2
    ts = [(t0 - (i + 1) * M).isoformat() for i in range(4)]
    # Row 2 is refused by the sensor check (after parsing), rows 3-5 while parsing: the lowest rows are kept.
    text = f"sensor,ts,value\nNOPE,{ts[0]},1\nRG-A,{ts[1]},abc\nRG-A,{ts[2]},abc\nRG-A,{ts[3]},abc\n"
    report = _post(client, text)
    assert report["error_count"] == 4 and [e["row"] for e in report["errors"]] == [2, 3]
    assert Reading.objects.count() == 0
