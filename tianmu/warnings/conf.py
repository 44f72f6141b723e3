"""Warning settings with their defaults, declared on WarningsConfig (core.plugins): settings.py or the
environment override them. Values marked [U] are assumptions a district should confirm (docs/warnings.md)."""

from __future__ import annotations

import os

from tianmu.core.plugins import setting

__all__ = ["DEFAULTS", "conf", "type_levels"]

DEFAULTS = {
    # The colours each type has. Rainstorm, typhoon and gale: CMA's four signals (facts.md §6, [C]);
    # geological hazard: four public colours ([C]); flash flood: the national two levels 准备转移 / 立即转移
    # taken as orange / red [U]; forest fire and high temperature: yellow, orange, red [U].
    "WARNINGS_TYPE_LEVELS": {
        "rainstorm": ["blue", "yellow", "orange", "red"],
        "typhoon": ["blue", "yellow", "orange", "red"],
        "gale": ["blue", "yellow", "orange", "red"],
        "geohazard": ["blue", "yellow", "orange", "red"],
        "flash_flood": ["orange", "red"],
        "forest_fire": ["yellow", "orange", "red"],
        "high_temperature": ["yellow", "orange", "red"],
        "other": ["blue", "yellow", "orange", "red"],
    },
    # Colours that need a second person's approval (four eyes: the approver is never the author).
    "WARNINGS_FOUR_EYES_LEVELS": ["orange", "red"],
    # Alarm → draft: alarms of these colours draft a warning; several in one town and type within this many
    # minutes merge into one draft.
    "WARNINGS_ALARM_LEVELS": ["orange", "red"],
    "WARNINGS_MERGE_WINDOW_MINUTES": 60,
    # How long an alarm-drafted warning is valid by default (hours) [U].
    "WARNINGS_DEFAULT_VALIDITY_HOURS": 6,
    # CAP 1.2. Identifier: 6-digit GB/T 2260 code + 3-digit GB/T 4657 agency code + 3-digit internal code +
    # 2-digit extension, "_" Beijing time "_" serial (facts.md §1). The agency code is [U].
    "WARNINGS_CAP_DIVISION_CODE": os.environ.get("TIANMU_CAP_DIVISION_CODE", "330112"),
    "WARNINGS_CAP_AGENCY_CODE": os.environ.get("TIANMU_CAP_AGENCY_CODE", "000"),  # [U]
    "WARNINGS_CAP_INTERNAL_CODE": "000",
    "WARNINGS_CAP_EXTENSION_CODE": "00",
    "WARNINGS_CAP_SENDER": os.environ.get("TIANMU_CAP_SENDER", "yjglj.linan.gov.cn"),  # [U]
    "WARNINGS_CAP_SENDER_NAME": "杭州市临安区应急管理局",
    "WARNINGS_CAP_SENDER_NAME_EN": "Lin'an District Emergency Management Bureau, Hangzhou",
    "WARNINGS_CAP_GEOCODE_NAME": "GB/T 2260",  # [U]
    # The address the public reaches the platform at: CAP <web> links to the warning's page under it.
    "WARNINGS_PUBLIC_URL": os.environ.get("TIANMU_PUBLIC_URL", "http://localhost:8000"),
    "WARNINGS_CAP_STATUS": os.environ.get("TIANMU_CAP_STATUS", "Actual"),  # "Exercise" for drills
    # Imports of other authorities' CAP files.
    "WARNINGS_CAP_MAX_BYTES": 512 * 1024,
    "WARNINGS_CAP_MAX_POLYGON_POINTS": 2000,
    # Text limits.
    "WARNINGS_HEADLINE_MAX": 120,
    "WARNINGS_TEXT_MAX": 4000,
    "WARNINGS_MAX_AREAS": 400,
    # The public feed: at most this many alerts; browsers and proxies may cache it this long (seconds).
    "WARNINGS_FEED_MAX": 200,
    "WARNINGS_FEED_CACHE_SECONDS": 60,
}


def conf(name: str):
    return setting(name, DEFAULTS[name])


def type_levels(hazard_type: str) -> list[str]:
    return list(conf("WARNINGS_TYPE_LEVELS").get(hazard_type, []))
