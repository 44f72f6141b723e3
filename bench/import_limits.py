"""Hostile and maximal uploads against the importers (issue 8, items 5 and 6): time and peak memory.

    .venv/bin/python bench/import_limits.py                   # this checkout
    .venv/bin/python bench/import_limits.py --code /tmp/base  # another checkout (e.g. `git archive <rev>`)
    .venv/bin/python bench/import_limits.py --case shared_string_1gib --case rows_200k
    .venv/bin/python bench/import_limits.py --code /tmp/base --no-defusedxml --case billion_laughs

Each case's file is built once under --work (default /tmp/tianmu-bench-io); each import runs in a fresh child
process (Django set up on an SQLite database of its own, a two-region world, one town user) that prints the
import's wall time, its RSS before, its peak RSS (ru_maxrss), the number of errors listed and counted, the size
of the JSON report, or the exception that escaped (a 500 in the web server). Only files and a local SQLite
database are touched. No timings live in the tests: this is the place for them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


# ------------------------------------------------------------------------------------------- files

def _xlsx_rows(rows, *, dimension: str | None = None) -> bytes:
    """A workbook written in write-only mode (no <dimension>, inline strings), optionally given a dimension."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    if dimension is None:
        return buf.getvalue()
    return _rewrite(buf.getvalue(), lambda xml: xml.replace(b"<sheetData>",
                                                            f'<dimension ref="{dimension}"/><sheetData>'.encode(), 1))


def _rewrite(data: bytes, change) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            body = zin.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                body = change(body)
            zout.writestr(info.filename, body)
    return out.getvalue()


def _headers():
    from tianmu.core.registry.io import _header
    from tianmu.core.registry.kinds import get_kind

    kind = get_kind("experts")
    return kind, [_header(kind, n) for n in kind.editable_fields()]


def _expert_rows(n: int, *, region: str, notes: str = ""):
    kind, titles = _headers()
    example = {"code": "", "name": "专家", "region": region, "lon": 119.301, "lat": 30.151, "contact": "",
               "phone": "13800000000", "notes": notes, **kind.example}
    yield titles
    for i in range(n):
        example["code"] = f"B-{i:07d}"
        yield [example.get(f) for f in kind.editable_fields()]


def build_shared_string(path: Path, size: int) -> None:
    """One cell whose shared string is `size` bytes of 'A': a ~1 MiB file (deflate) that unpacks to `size`."""
    base = _xlsx_rows([["名称"], ["x"]])
    with zipfile.ZipFile(io.BytesIO(base)) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED,
                                                                    compresslevel=9) as zout:
        for info in zin.infolist():
            body = zin.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                body = body.replace(b'<c r="A2" t="inlineStr"><is><t>x</t></is></c>', b'<c r="A2" t="s"><v>0</v></c>')
            if info.filename == "[Content_Types].xml":
                body = body.replace(b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                                                 b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
                                                 b"</Types>")
            if info.filename == "xl/_rels/workbook.xml.rels":
                body = body.replace(b"</Relationships>", b'<Relationship Id="rIdS" Type="http://schemas.openxmlformats.'
                                                         b'org/officeDocument/2006/relationships/sharedStrings" '
                                                         b'Target="sharedStrings.xml"/></Relationships>')
            zout.writestr(info.filename, body)
        with zout.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
            fh.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
                     b'uniqueCount="1"><si><t>')
            chunk = b"A" * MiB
            for _ in range(size // MiB):
                fh.write(chunk)
            fh.write(b"</t></si></sst>")


def build_many_members(path: Path, members: int) -> None:
    base = _xlsx_rows([["名称"], ["x"]])
    with zipfile.ZipFile(io.BytesIO(base)) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
        for i in range(members):
            zout.writestr(f"z/{i}", b"")


def build_billion_laughs(path: Path) -> None:
    ents = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    doctype = f'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY l0 "ha">{ents}]>'.encode()
    data = _rewrite(_xlsx_rows([["名称"], ["x"]]), lambda xml: doctype + xml.replace(
        b"<t>x</t>", b"<t>&l9;</t>"))
    path.write_bytes(data)


def build_csv_rows(path: Path, n: int) -> None:
    with path.open("w") as fh:
        fh.write("sensor,ts,value\n")
        for i in range(n):
            fh.write(f"NOPE-{i % 50},2026-01-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}+08:00,1.5\n")


def build_csv_long_line(path: Path, size: int) -> None:
    with path.open("w") as fh:
        fh.write("sensor,ts,value\nRG-1,2026-01-01T00:00:00+08:00,")
        fh.write("9" * size)
        fh.write("\n")


CASES = {
    # name: (kind, builder, description)
    "shared_string_1gib": ("xlsx", lambda p: build_shared_string(p, 1024 * MiB), "one 1 GiB shared string"),
    "rows_200k": ("xlsx", lambda p: p.write_bytes(_xlsx_rows(_expert_rows(200_000, region="330112999999"))),
                  "200,000 rows, each with an unknown region (no <dimension>)"),
    "rows_200k_declared": ("xlsx", lambda p: p.write_bytes(_xlsx_rows(_expert_rows(200_000, region="330112999999"),
                                                                      dimension="A1:K200001")),
                           "the same with its <dimension>"),
    "rows_30k": ("xlsx", lambda p: p.write_bytes(_xlsx_rows(_expert_rows(30_000, region="330112999999"))),
                 "30,000 rows, each with an unknown region (no <dimension>)"),
    "rows_30k_declared": ("xlsx", lambda p: p.write_bytes(_xlsx_rows(_expert_rows(30_000, region="330112999999"),
                                                                     dimension="A1:K30001")),
                          "the same with its <dimension>"),
    "shared_string_90mib": ("xlsx", lambda p: build_shared_string(p, 90 * MiB), "one 90 MiB shared string"),
    "shared_string_45mib": ("xlsx", lambda p: build_shared_string(p, 45 * MiB),
                            "one 45 MiB shared string (under the uncompressed limit: refused by the cell limit)"),
    "empty_rows_1m": ("xlsx", lambda p: p.write_bytes(_rewrite(_xlsx_rows(_expert_rows(1, region="330112001001")),
                                                               lambda x: x.replace(b"</sheetData>",
                                                                                   b'<row r="1048576"/></sheetData>'))),
                      "one row at 1,048,576 (no <dimension>)"),
    "empty_rows_1m_declared": ("xlsx", lambda p: p.write_bytes(_rewrite(
        _xlsx_rows(_expert_rows(1, region="330112001001"), dimension="A1:K1048576"),
        lambda x: x.replace(b"</sheetData>", b'<row r="1048576"/></sheetData>'))),
        "the same with a <dimension> of A1:K1048576"),
    "many_members_100k": ("xlsx", lambda p: build_many_members(p, 100_000), "100,000 empty zip members"),
    "billion_laughs": ("xlsx", build_billion_laughs, "a DOCTYPE with nested entities (10^9 expansions)"),
    "valid_20k": ("xlsx", lambda p: p.write_bytes(_xlsx_rows(_expert_rows(20_000, region="330112001001"))),
                  "20,000 valid rows (the largest import allowed): dry run"),
    "bad_20k": ("xlsx", lambda p: p.write_bytes(_xlsx_rows(_expert_rows(20_000, region="330112999999"))),
                "20,000 rows, each with an unknown region: dry run, the longest error report"),
    "csv_300k_rows": ("csv", lambda p: build_csv_rows(p, 300_000), "300,000 rows of unknown sensors"),
    "csv_long_line_100mib": ("csv", lambda p: build_csv_long_line(p, 100 * MiB), "one 100 MiB line"),
}


# ------------------------------------------------------------------------------------------- child

def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(args) -> None:
    import django

    django.setup()
    from tianmu.core.models import User
    from tianmu.core.registry.kinds import get_kind

    user = User.objects.get(username="bench_town")
    case = args.case[0]
    kind_name, _builder, _desc = CASES[case]
    path = Path(args.work) / f"{case}.{kind_name}"
    if kind_name == "xlsx":
        from tianmu.core.registry.io import import_xlsx

        run = lambda fh: import_xlsx(user, get_kind("experts"), fh, dry_run=True)  # noqa: E731
    else:
        from tianmu.sensing.services import import_readings_csv

        run = lambda fh: import_readings_csv(user, fh, dry_run=True)  # noqa: E731
    before = _rss_mib()
    t = time.perf_counter()
    out = {"case": case, "rss_before_mib": round(before, 1)}
    try:
        with path.open("rb") as fh:
            report = run(fh)
        body = report.as_dict()
        out.update(errors_listed=len(body["errors"]), errors_counted=body.get("error_count", len(body["errors"])),
                   report_bytes=len(json.dumps(body, ensure_ascii=False)),
                   first_error=(body["errors"][0]["message"] if body["errors"] else None))
    except BaseException as exc:  # noqa: BLE001 - what escapes the importer is a 500 in the server
        out["exception"] = f"{type(exc).__name__}: {str(exc)[:120]}"
    out["seconds"] = round(time.perf_counter() - t, 2)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out, ensure_ascii=False))


# ------------------------------------------------------------------------------------------- parent

def setup_database(env: dict) -> None:
    code = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from tianmu.core.models import Region, User
from tianmu.core.choices import Role
def sq(lon, lat, h):
    return {"type": "Polygon", "coordinates": [[[lon-h, lat-h], [lon+h, lat-h], [lon+h, lat+h], [lon-h, lat+h],
            [lon-h, lat-h]]]}
def region(code, name, level, parent, lon, lat, h):
    return Region.objects.update_or_create(code=code, defaults=dict(name=name, level=level, parent=parent, lon=lon,
        lat=lat, min_lon=lon-h, min_lat=lat-h, max_lon=lon+h, max_lat=lat+h, boundary=sq(lon, lat, h)))[0]
d = region("330112", "临安区", "district", None, 119.40, 30.15, 0.40)
t = region("330112001", "甲镇", "town", d, 119.30, 30.15, 0.10)
region("330112001001", "甲一村", "village", t, 119.30, 30.15, 0.05)
User.objects.update_or_create(username="bench_town", defaults=dict(role=Role.TOWN_STAFF, region=t))
"""
    # cwd: `python -c` puts the current directory first on sys.path, before PYTHONPATH (--code).
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=env["BENCH_WORK"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", default=str(ROOT), help="checkout whose tianmu package is measured")
    parser.add_argument("--work", default="/tmp/tianmu-bench-io")
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--no-defusedxml", action="store_true",
                        help="OPENPYXL_DEFUSEDXML=False in the child: openpyxl as it parses without defusedxml installed "
                             "(only for measuring old code: core/sheets.py refuses to start so)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work)
    env = {**os.environ, "PYTHONPATH": args.code, "DJANGO_SETTINGS_MODULE": "tianmu.settings",
           "TIANMU_DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}", "TIANMU_LOG_LEVEL": "ERROR",
           "BENCH_WORK": str(work)}
    if args.no_defusedxml:
        env["OPENPYXL_DEFUSEDXML"] = "False"
    if args.child:
        child(args)
        return
    work.mkdir(parents=True, exist_ok=True)
    setup_database(env)
    sys.path.insert(0, args.code)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "TIANMU_DATABASE_URL")})
    import django

    django.setup()
    for name in args.case or list(CASES):
        kind_name, builder, desc = CASES[name]
        path = work / f"{name}.{kind_name}"
        if not path.exists():
            t = time.perf_counter()
            builder(path)
            print(f"# built {path.name}: {path.stat().st_size / MiB:.2f} MiB in {time.perf_counter() - t:.1f} s",
                  flush=True)
        result = subprocess.run([sys.executable, __file__, "--child", "--case", name, "--work", str(work)], env=env,
                                capture_output=True, text=True)
        line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else json.dumps(
            {"case": name, "child_failed": result.returncode, "stderr": result.stderr[-300:]})
        data = json.loads(line)
        data["file_mib"] = round(path.stat().st_size / MiB, 2)
        data["what"] = desc
        print(json.dumps(data, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
