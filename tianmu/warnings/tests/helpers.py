"""Helpers for warning tests: valid draft input, a warning brought to a state through the services, and a
foreign CAP 1.2 alert (the city's) as another authority would send it."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

STEPS = {"draft": [], "submitted": ["submit"], "approved": ["submit", "approve"],
         "issued": ["submit", "approve", "issue"]}


def draft_data(region, **overrides) -> dict:
    data = {"hazard_type": "rainstorm", "level": "yellow", "areas": [region.code],
            "expires": timezone.now() + timedelta(hours=6), "headline": f"{region.name}暴雨黄色预警",
            "description": "预计未来 6 小时降雨量将达 50 毫米以上。", "instruction_public": "注意防范。"}
    data.update(overrides)
    return data


def make_warning(actor, region, state: str = "draft", *, approver=None, **overrides):
    """A warning in `state` for `region`, made by `actor` (and approved by `approver`, default the actor: fine
    for the default yellow level; orange and red need someone else)."""
    from tianmu.warnings import services

    w = services.draft_warning(actor, draft_data(region, **overrides))
    for step in STEPS[state]:
        who = (approver or actor) if step == "approve" else actor
        w = getattr(services, step)(who, w)
    return w


def cap_xml(*, identifier: str = "33010041600000_20260730080000_1", sender: str = "hzqx.zj.gov.cn",
            msg_type: str = "Alert", code: str = "330112001001", lon: float = 119.30, lat: float = 30.15,
            severity: str = "Severe", event: str = "暴雨预警", references: str = "", hours: int = 6,
            polygon: str | None = None, extra: str = "") -> bytes:
    """A CAP 1.2 alert as the city's weather service would send one."""
    from tianmu.warnings.cap import cap_time

    now = timezone.now()
    poly = polygon if polygon is not None else " ".join(
        f"{y:.4f},{x:.4f}" for x, y in [(lon - .02, lat - .02), (lon + .02, lat - .02), (lon + .02, lat + .02),
                                        (lon - .02, lat + .02), (lon - .02, lat - .02)])
    refs = f"<references>{references}</references>" if references else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>{sender}</sender>
  <sent>{cap_time(now)}</sent>
  <status>Actual</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {refs}
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>{event}</event>
    <urgency>Expected</urgency>
    <severity>{severity}</severity>
    <certainty>Likely</certainty>
    <onset>{cap_time(now)}</onset>
    <expires>{cap_time(now + timedelta(hours=hours))}</expires>
    <senderName>杭州市气象台</senderName>
    <headline>杭州市气象台发布暴雨橙色预警</headline>
    <description>预计未来 3 小时临安西部降雨量将达 50 毫米以上。</description>
    <instruction>注意防范强降水引发的山洪、地质灾害。</instruction>
    <area>
      <areaDesc>临安区西部</areaDesc>
      {f"<polygon>{poly}</polygon>" if poly else ""}
      <geocode><valueName>GB/T 2260</valueName><value>{code}</value></geocode>
    </area>
  </info>{extra}
</alert>""".encode()
