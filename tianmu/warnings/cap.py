"""OASIS CAP 1.2 in and out: building the alert of an issue, update or cancellation; validating against the
OASIS XSD (cap/CAP-v1.2.xsd, see cap/README.md); parsing other authorities' alerts safely.

Out: identifiers in the pattern of GB/T 35965.1's annex (facts.md §1), Beijing time with +08:00, one info block
in zh-CN and one in en-US, one <area> per targeted region (its boundary as polygons, its GB/T 2260 code as a
geocode) and one for a drawn polygon; polygons are "lat,lon" pairs, closed.
In: defusedxml refuses DTDs, entities and external references before lxml validates against the XSD."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from django.utils import translation
from django.utils.translation import gettext_lazy as _

from tianmu.core.errors import ServiceError, formatted

from .choices import CAP_CATEGORY, CAP_SEVERITY, LEVEL_GRADE, SEVERITY_LEVEL, HazardType, Level
from .conf import conf

__all__ = ["NS", "XSD_PATH", "cap_time", "sender", "new_identifier", "build_alert", "validate", "schema",
           "parse_alert", "ParsedAlert", "ParsedInfo", "polygon_to_cap", "cap_to_polygon", "RESPONSE_TYPES"]

NS = "urn:oasis:names:tc:emergency:cap:1.2"
XSD_PATH = Path(__file__).parent / "cap" / "CAP-v1.2.xsd"
BEIJING = ZoneInfo("Asia/Shanghai")
RESPONSE_TYPES = {Level.RED: "Evacuate", Level.ORANGE: "Prepare", Level.YELLOW: "Prepare", Level.BLUE: "Monitor"}


def cap_time(dt: datetime) -> str:
    """CAP's date-time: seconds, Beijing time, "+08:00" (never "Z")."""
    return dt.astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M:%S+08:00")


def sender() -> str:
    return conf("WARNINGS_CAP_SENDER")


def unit_code() -> str:
    """The 14-character issuing-unit code: division, agency (GB/T 4657), internal, extension."""
    return (conf("WARNINGS_CAP_DIVISION_CODE") + conf("WARNINGS_CAP_AGENCY_CODE")
            + conf("WARNINGS_CAP_INTERNAL_CODE") + conf("WARNINGS_CAP_EXTENSION_CODE"))


def new_identifier(at: datetime) -> str:
    """`ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N`: the serial N counts the messages already sent in that second."""
    from .models import CapMessage

    stem = f"{unit_code()}_{at.astimezone(BEIJING):%Y%m%d%H%M%S}_"
    taken = set(CapMessage.objects.filter(identifier__startswith=stem).values_list("identifier", flat=True))
    for n in range(10):
        if f"{stem}{n}" not in taken:
            return f"{stem}{n}"
    raise ServiceError({"__all__": [_("同一秒内发出的预警消息超过 10 条,请稍后重试")]})


# ---- geometry ------------------------------------------------------------------------------------------------

def polygon_to_cap(ring: list) -> str:
    """A GeoJSON ring ([lon, lat] …) as CAP's "lat,lon lat,lon …", closed."""
    points = [(round(float(p[1]), 5), round(float(p[0]), 5)) for p in ring]
    if points[0] != points[-1]:
        points.append(points[0])
    return " ".join(f"{lat},{lon}" for lat, lon in points)


def cap_to_polygon(text: str) -> dict:
    """CAP's "lat,lon …" (≥ 4 pairs, closed) as a GeoJSON Polygon; ValueError when it is not one."""
    pairs = []
    for token in text.split():
        lat, lon = token.split(",")
        lat, lon = float(lat), float(lon)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(token)
        pairs.append([lon, lat])
    if len(pairs) < 4 or pairs[0] != pairs[-1]:
        raise ValueError("a CAP polygon needs at least four pairs, the first equal to the last")
    return {"type": "Polygon", "coordinates": [pairs]}


def _rings(geometry: dict | None) -> list[list]:
    if not geometry:
        return []
    if geometry.get("type") == "Polygon":
        return [geometry["coordinates"][0]]
    if geometry.get("type") == "MultiPolygon":
        return [poly[0] for poly in geometry["coordinates"]]
    return []


# ---- out -----------------------------------------------------------------------------------------------------

# Characters XML 1.0 cannot carry (control characters other than tab, newline and carriage return; surrogates;
# U+FFFE and U+FFFF): dropped from texts people typed before they go into a CAP message.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value) -> str:
    return NOT_XML.sub("", str(value))


def _text(parent, tag: str, value) -> None:
    from lxml import etree

    if value is None or value == "":
        return
    node = etree.SubElement(parent, f"{{{NS}}}{tag}")
    node.text = xml_text(value)


def _pair(parent, tag: str, name: str, value: str) -> None:
    from lxml import etree

    node = etree.SubElement(parent, f"{{{NS}}}{tag}")
    _text(node, "valueName", name)
    _text(node, "value", value)


def _english(w) -> dict:
    with translation.override("en"):
        level, kind = str(Level(w.level).label), str(HazardType(w.hazard_type).label)
        names = ", ".join(r.name for r in w.areas.all()) or str(_("划定区域"))
        headline = w.headline_en or f"{level} {kind} warning: {names}"
        description = w.description_en or (
            f"{LEVEL_GRADE[w.level]} ({level}) {kind} warning for {names}, valid from "
            f"{w.onset.astimezone(BEIJING):%Y-%m-%d %H:%M} to {w.expires.astimezone(BEIJING):%Y-%m-%d %H:%M} "
            f"Beijing time. The Chinese message is authoritative.")
        return {"headline": headline, "description": description, "instruction": w.instruction_en,
                "event": f"{kind} warning", "area_fallback": str(_("划定区域"))}


def _info(alert, w, *, language: str, msg_type: str, texts: dict, web: str, sender_name: str) -> None:
    from lxml import etree

    info = etree.SubElement(alert, f"{{{NS}}}info")
    _text(info, "language", language)
    _text(info, "category", CAP_CATEGORY[w.hazard_type])
    _text(info, "event", texts["event"])
    _text(info, "responseType", "AllClear" if msg_type == "Cancel" else RESPONSE_TYPES[w.level])
    _text(info, "urgency", "Past" if msg_type == "Cancel" else "Immediate" if w.onset <= w.issued_at else "Expected")
    _text(info, "severity", CAP_SEVERITY[w.level])
    _text(info, "certainty", "Observed" if w.citations else "Likely")
    _pair(info, "eventCode", "TIANMU:hazard", w.hazard_type)
    _text(info, "effective", cap_time(w.issued_at))
    _text(info, "onset", cap_time(w.onset))
    _text(info, "expires", cap_time(w.expires))
    _text(info, "senderName", sender_name)
    _text(info, "headline", texts["headline"])
    _text(info, "description", texts["description"])
    _text(info, "instruction", texts["instruction"])
    _text(info, "web", web)
    _pair(info, "parameter", "level", w.level)
    geocode = conf("WARNINGS_CAP_GEOCODE_NAME")
    for region in sorted(w.areas.all(), key=lambda r: r.code):
        area = etree.SubElement(info, f"{{{NS}}}area")
        _text(area, "areaDesc", region.name)
        for ring in _rings(_boundary(region.pk)):
            _text(area, "polygon", polygon_to_cap(ring))
        _pair(area, "geocode", geocode, region.code)
    if w.polygon:
        area = etree.SubElement(info, f"{{{NS}}}area")
        _text(area, "areaDesc", texts["area_fallback"])
        _text(area, "polygon", polygon_to_cap(w.polygon["coordinates"][0]))


def _boundary(region_pk: int) -> dict | None:
    from tianmu.core.models import Region

    return Region.objects.values_list("boundary", flat=True).get(pk=region_pk)


def build_alert(w, message, *, base_url: str = "") -> str:
    """The CAP 1.2 XML of `message` (a CapMessage being written) for warning `w`."""
    from lxml import etree

    alert = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _text(alert, "identifier", message.identifier)
    _text(alert, "sender", message.sender)
    _text(alert, "sent", cap_time(message.sent))
    _text(alert, "status", conf("WARNINGS_CAP_STATUS"))
    _text(alert, "msgType", message.msg_type)
    _text(alert, "scope", "Public")
    if message.msg_type == "Cancel" and w.end_note:
        _text(alert, "note", w.end_note)
    _text(alert, "references", message.references)
    web = (base_url or conf_base_url()) + w.get_absolute_url()
    with translation.override("zh-hans"):
        zh = {"headline": w.headline, "description": w.description,
              "instruction": "\n".join(t for t in (w.instruction_public, w.instruction_responders) if t),
              "event": f"{HazardType(w.hazard_type).label}预警", "area_fallback": str(_("划定区域"))}
        _info(alert, w, language="zh-CN", msg_type=message.msg_type, texts=zh, web=web,
              sender_name=conf("WARNINGS_CAP_SENDER_NAME"))
    _info(alert, w, language="en-US", msg_type=message.msg_type, texts=_english(w), web=web,
          sender_name=conf("WARNINGS_CAP_SENDER_NAME_EN"))
    return etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode()


def conf_base_url() -> str:
    return conf("WARNINGS_PUBLIC_URL").rstrip("/")


# ---- validation and parsing ----------------------------------------------------------------------------------

@cache
def schema():
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(XSD_PATH)))


def _secure_parser():
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, dtd_validation=False, load_dtd=False,
                           huge_tree=False, remove_comments=True)


def validate(data: bytes):
    """Parse and validate a CAP 1.2 document: ServiceError on `file` with a clear message, else the root."""
    import defusedxml.ElementTree as safe
    from defusedxml import DefusedXmlException
    from lxml import etree

    if len(data) > conf("WARNINGS_CAP_MAX_BYTES"):
        raise ServiceError({"file": [formatted(_("CAP 文件不能超过 %(n)s KB"),
                                               {"n": conf("WARNINGS_CAP_MAX_BYTES") // 1024})]})
    try:
        safe.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise ServiceError({"file": [_("CAP 文件含有 DTD 或实体声明,出于安全原因拒绝")]}) from None
    except safe.ParseError as exc:
        raise ServiceError({"file": [formatted(_("不是有效的 XML:%(error)s"), {"error": str(exc)[:200]})]}) from None
    try:
        root = etree.fromstring(data, _secure_parser())
    except etree.XMLSyntaxError as exc:
        raise ServiceError({"file": [formatted(_("不是有效的 XML:%(error)s"), {"error": str(exc)[:200]})]}) from None
    if root.tag != f"{{{NS}}}alert":
        raise ServiceError({"file": [_("不是 CAP 1.2 预警(根元素须为 urn:oasis:names:tc:emergency:cap:1.2 的 alert)")]})
    xsd = schema()
    if not xsd.validate(root):
        first = xsd.error_log.filter_from_errors()[:3] or list(xsd.error_log)[:3]
        detail = "; ".join(f"line {e.line}: {e.message}" for e in first)
        raise ServiceError({"file": [formatted(_("CAP 文件不符合 CAP 1.2 规范:%(detail)s"), {"detail": detail[:500]})]})
    return root


@dataclass
class ParsedInfo:
    language: str
    event: str
    severity: str
    headline: str = ""
    description: str = ""
    instruction: str = ""
    onset: datetime | None = None
    expires: datetime | None = None
    effective: datetime | None = None
    sender_name: str = ""
    level_parameter: str = ""
    polygons: list[dict] = field(default_factory=list)
    geocodes: list[tuple[str, str]] = field(default_factory=list)
    area_names: list[str] = field(default_factory=list)


@dataclass
class ParsedAlert:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    references: list[tuple[str, str, str]]
    infos: list[ParsedInfo]

    def info(self) -> ParsedInfo | None:
        """The Chinese block if there is one, else the first."""
        for i in self.infos:
            if i.language.lower().startswith("zh"):
                return i
        return self.infos[0] if self.infos else None

    def level(self) -> str | None:
        info = self.info()
        if info is None:
            return None
        colours = {"red": "red", "红": "red", "红色": "red", "orange": "orange", "橙": "orange", "橙色": "orange",
                   "yellow": "yellow", "黄": "yellow", "黄色": "yellow", "blue": "blue", "蓝": "blue", "蓝色": "blue"}
        return colours.get(info.level_parameter.strip().lower()) or SEVERITY_LEVEL.get(info.severity)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def parse_alert(data: bytes) -> ParsedAlert:
    """A validated CAP 1.2 alert as plain values; ServiceError when invalid or its polygons are not CAP's."""
    root = validate(data)
    ns = {"c": NS}

    def t(node, path: str) -> str:
        found = node.find(path, ns)
        return (found.text or "").strip() if found is not None else ""

    refs = []
    for token in t(root, "c:references").split():
        parts = token.split(",")
        if len(parts) == 3:
            refs.append((parts[0], parts[1], parts[2]))
    infos = []
    for node in root.findall("c:info", ns):
        info = ParsedInfo(language=t(node, "c:language") or "en-US", event=t(node, "c:event"),
                          severity=t(node, "c:severity"), headline=t(node, "c:headline"),
                          description=t(node, "c:description"), instruction=t(node, "c:instruction"),
                          onset=_dt(t(node, "c:onset")), expires=_dt(t(node, "c:expires")),
                          effective=_dt(t(node, "c:effective")), sender_name=t(node, "c:senderName"))
        for p in node.findall("c:parameter", ns):
            if t(p, "c:valueName").lower() in ("level", "预警等级", "color", "colour", "预警颜色"):
                info.level_parameter = t(p, "c:value")
        for area in node.findall("c:area", ns):
            info.area_names.append(t(area, "c:areaDesc"))
            for poly in area.findall("c:polygon", ns):
                try:
                    info.polygons.append(cap_to_polygon(poly.text or ""))
                except ValueError:
                    raise ServiceError({"file": [formatted(_("区域“%(area)s”的多边形不是 CAP 格式(纬度,经度 至少 4 对,首尾相同)"),
                                                           {"area": t(area, "c:areaDesc")[:50]})]}) from None
            for code in area.findall("c:geocode", ns):
                info.geocodes.append((t(code, "c:valueName"), t(code, "c:value")))
        infos.append(info)
    return ParsedAlert(identifier=t(root, "c:identifier"), sender=t(root, "c:sender"), sent=_dt(t(root, "c:sent")),
                       status=t(root, "c:status"), msg_type=t(root, "c:msgType"), references=refs, infos=infos)
