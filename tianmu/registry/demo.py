"""The base-data registries of the Lin'an demo (the demo step "registry.records", declared on RegistryConfig).

Deterministic (seeded): figures follow shared/mission/ and shared/domain/: 3,441 geological-hazard risk zones
graded 极高/高/中/低, 52 experts in five fields, the six town full-time fire brigades (昌化, 於潜, 太湖源, 天目山,
板桥, 高虹), the social rescue teams 北斗, 狼行, 民安 and outdoor, and shelters at Zhejiang's three tiers with
their minimum capacities (county ≥200, town ≥100, village ≥50). Every record is placed at a random point inside
its village's boundary.
"""

from __future__ import annotations

import random

from tianmu.core.models import Region
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import bulk_create_records
from tianmu.demo import geography
from tianmu.demo.geography import MOUNTAIN_WEIGHT

from .choices import (
    EquipmentStatus,
    EquipmentType,
    ExpertField,
    HazardType,
    Readiness,
    RiskLevel,
    ShelterDuration,
    ShelterLevel,
    ShelterType,
    SiteType,
    TeamType,
    Tier,
)

__all__ = ["build_records"]

GEOLOGICAL_ZONES = 3441
EXPERTS = 52
FIRE_BRIGADE_TOWNS = ["昌化镇", "於潜镇", "太湖源镇", "天目山镇", "板桥镇", "高虹镇"]
SOCIAL_TEAMS = [("北斗救援队", "山地搜救、水域救援"), ("狼行救援队", "山地搜救、绳索救援"),
                ("民安救援队", "水域救援、应急救护"), ("临安户外救援队", "山地搜救、野外救护")]


class _Placer:
    """Places records at random points inside villages, weighted by population or mountain risk."""

    def __init__(self, regions: dict[str, Region], rng: random.Random):
        self.rng = rng
        self.district = next(r for r in regions.values() if r.level == "district")
        self.towns = sorted((r for r in regions.values() if r.level == "town"), key=lambda r: r.code)
        self.villages = sorted((r for r in regions.values() if r.level == "village"), key=lambda r: r.code)
        self.by_town = {t.code: [v for v in self.villages if v.parent_id == t.pk] for t in self.towns}

    def point(self, region: Region) -> tuple[float, float]:
        lon, lat = geography.random_point_in(region.boundary, self.rng)
        return round(lon, 6), round(lat, 6)

    def village(self, weight: str = "population") -> Region:
        if weight == "mountain":
            weights = [MOUNTAIN_WEIGHT.get(v.parent.name, 1.0) * max(v.area_km2, 0.5) for v in self.villages]
        else:
            weights = [max(v.population, 1) for v in self.villages]
        return self.rng.choices(self.villages, weights=weights)[0]

    def village_in(self, town: Region) -> Region:
        return self.rng.choice(self.by_town[town.code])

    def seat_village(self, town: Region) -> Region:
        """The village or community holding the town seat (the most populous one)."""
        return max(self.by_town[town.code], key=lambda v: v.population)


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3589')}{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}"


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文斌海波宁辉鹏飞林峰晨"


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _records(placer: _Placer, rng: random.Random) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {k: [] for k in ("hazards", "sites", "teams", "experts", "warehouses", "shelters",
                                                  "equipment")}

    def base(prefix: str, n: int, name: str, region: Region, village: Region | None = None, **extra) -> dict:
        lon, lat = placer.point(village or region)
        return {"code": f"{prefix}{region.code[6:]}{n:04d}", "name": name, "region": region, "lon": lon,
                "lat": lat, "address": f"{village.parent.name}{village.name}" if village else
                f"{region.parent.name if region.level == 'village' else ''}{region.name}",
                "contact": _person(rng), "phone": _phone(rng), **extra}

    # Hazard sources: 3,441 geological-hazard risk zones graded 极高/高/中/低, then other hazard types.
    risk_weights = [(RiskLevel.MAJOR, 3), (RiskLevel.HIGH, 12), (RiskLevel.MEDIUM, 35), (RiskLevel.LOW, 50)]
    counter: dict[str, int] = {}

    def next_n(key: str) -> int:
        counter[key] = counter.get(key, 0) + 1
        return counter[key]

    for _ in range(GEOLOGICAL_ZONES):
        v = placer.village("mountain")
        n = next_n("DZ" + v.code)
        kind = rng.choice(["滑坡", "崩塌", "泥石流", "斜坡"])
        level = rng.choices([lv for lv, _w in risk_weights], weights=[w for _lv, w in risk_weights])[0]
        people = rng.randint(3, 120) if level in (RiskLevel.MAJOR, RiskLevel.HIGH) else rng.randint(0, 40)
        out["hazards"].append(base("DZ", n, f"{v.name}{kind}风险区{n}号", v, hazard_type=HazardType.GEOLOGICAL,
                                   risk_level=level, threatened_people=people,
                                   threatened_households=max(0, people // 3), monitored=rng.random() < 0.25,
                                   responsible_unit=f"{v.parent.name}人民政府"))
    others = [(HazardType.FLASH_FLOOD, 160, "mountain", "山洪危险区"), (HazardType.RESERVOIR, 45, "mountain", "山塘"),
              (HazardType.HAZCHEM, 38, "population", "化工有限公司"), (HazardType.MINE, 14, "mountain", "石矿"),
              (HazardType.GAS, 10, "population", "燃气储配站"), (HazardType.FIREWORKS, 8, "population", "烟花爆竹仓库"),
              (HazardType.FOREST_FIRE, 60, "mountain", "林区高火险区"),
              (HazardType.INDUSTRIAL, 260, "population", "制品有限公司")]
    for htype, count, weight, suffix in others:
        for _ in range(count):
            v = placer.village(weight)
            n = next_n("WX" + v.code)
            level = rng.choices([lv for lv, _w in risk_weights], weights=[2, 10, 40, 48])[0]
            people = rng.randint(5, 300)
            out["hazards"].append(base("WX", n, f"{v.name}{suffix}" + (f"{n}号" if htype in (
                HazardType.FLASH_FLOOD, HazardType.FOREST_FIRE, HazardType.RESERVOIR) else ""), v,
                hazard_type=htype, risk_level=level, threatened_people=people, threatened_households=people // 3,
                monitored=rng.random() < 0.4, responsible_unit=f"{v.parent.name}人民政府"))

    # Protected sites: schools, hospitals, nursing homes, reservoirs …
    sites = [(SiteType.SCHOOL, 92, "学校", (200, 1800)), (SiteType.KINDERGARTEN, 84, "幼儿园", (60, 400)),
             (SiteType.HOSPITAL, 24, "卫生院", (30, 600)), (SiteType.NURSING_HOME, 31, "敬老院", (20, 200)),
             (SiteType.RESERVOIR, 62, "水库", (0, 0)), (SiteType.SCENIC, 28, "景区", (100, 5000)),
             (SiteType.MARKET, 22, "农贸市场", (100, 1500)), (SiteType.GOVERNMENT, 18, "人民政府", (50, 200)),
             (SiteType.WATER_SUPPLY, 40, "水厂", (5, 30)), (SiteType.POWER, 30, "变电站", (0, 10))]
    for stype, count, suffix, (lo, hi) in sites:
        for i in range(count):
            if stype == SiteType.GOVERNMENT:
                town = placer.towns[i]
                v = placer.seat_village(town)
                name = town.name.replace("街道", "街道办事处") if town.kind == "街道" else f"{town.name}人民政府"
            else:
                v = placer.village("mountain" if stype in (SiteType.RESERVOIR, SiteType.SCENIC) else "population")
                name = f"{v.name}{suffix}" if stype != SiteType.SCHOOL else f"{v.name}{rng.choice(['小学', '中学'])}"
            n = next_n("FH" + v.code)
            out["sites"].append(base("FH", n, name + (f"({n})" if n > 1 else ""), v, site_type=stype,
                                     occupants=rng.randint(lo, hi),
                                     vulnerable=stype in (SiteType.SCHOOL, SiteType.KINDERGARTEN,
                                                          SiteType.HOSPITAL, SiteType.NURSING_HOME)))

    # Rescue teams.
    district_seat = placer.seat_village(placer.towns[0])
    out["teams"].append(base("DW", 1, "临安区消防救援大队", placer.district, district_seat,
                             team_type=TeamType.COMPREHENSIVE, tier=Tier.DISTRICT, headcount=86,
                             specialties="灭火、抢险救援、水域救援", equipment_summary="消防车18辆、冲锋舟4艘"))
    professional = [("区森林消防专业队", "森林灭火、扑火", 45), ("区水利抢险队", "堤防抢险、排涝", 40),
                    ("国网临安供电抢修队", "电力抢修", 60), ("区120急救中心", "医疗急救", 38),
                    ("区危化品应急救援队", "危化品处置、堵漏", 24), ("区地质灾害应急队", "地质灾害调查、监测", 16),
                    ("区交通抢险保通队", "道路抢通", 50), ("区通信保障队", "应急通信", 20)]
    for i, (name, spec, head) in enumerate(professional, start=2):
        out["teams"].append(base("DW", i, name, placer.district, placer.village_in(placer.towns[0]),
                                 team_type=TeamType.PROFESSIONAL, tier=Tier.DISTRICT, headcount=head,
                                 specialties=spec))
    for i, (name, spec) in enumerate(SOCIAL_TEAMS, start=20):
        v = placer.village("population")
        out["teams"].append(base("DW", i, name, placer.district, v, team_type=TeamType.SOCIAL, tier=Tier.DISTRICT,
                                 headcount=rng.randint(25, 80), specialties=spec,
                                 readiness=Readiness.STANDBY))
    for town in placer.towns:
        seat = placer.seat_village(town)
        if town.name in FIRE_BRIGADE_TOWNS:
            out["teams"].append(base("DW", 1, f"{town.name}专职消防队", town, seat, team_type=TeamType.COMPREHENSIVE,
                                     tier=Tier.TOWN, headcount=rng.randint(15, 25),
                                     specialties="灭火、抢险救援", equipment_summary="消防车2辆"))
        out["teams"].append(base("DW", 2, f"{town.name}综合应急救援队", town, seat, team_type=TeamType.COMPREHENSIVE,
                                 tier=Tier.TOWN, headcount=rng.randint(30, 60), specialties="抢险救援、转移群众"))
        for v in placer.by_town[town.code]:
            out["teams"].append(base("DW", 1, f"{v.name}应急小分队", v, team_type=TeamType.VOLUNTEER,
                                     tier=Tier.VILLAGE, headcount=rng.randint(8, 20), specialties="巡查、转移、先期处置",
                                     readiness=rng.choices([Readiness.READY, Readiness.STANDBY], [3, 1])[0]))

    # 52 experts in the five fields.
    fields = list(ExpertField)
    specialties = {ExpertField.NATURAL_DISASTER: ["地质灾害", "水文水资源", "气象", "森林防火"],
                   ExpertField.WORK_SAFETY: ["危险化学品", "非煤矿山", "工贸安全", "建筑施工"],
                   ExpertField.FIRE: ["火灾扑救", "建筑消防"], ExpertField.MEDICAL: ["急诊急救", "疾病防控"],
                   ExpertField.COMPREHENSIVE: ["应急管理", "通信保障", "交通运输"]}
    for i in range(EXPERTS):
        f = fields[i % len(fields)]
        v = placer.village_in(placer.towns[i % 5]) if i % 3 else placer.village("population")
        out["experts"].append(base("ZJ", i + 1, _person(rng), v, field=f, specialty=rng.choice(specialties[f]),
                                   employer=rng.choice(["区应急管理局", "区自然资源和规划分局", "区林业水利局",
                                                        "区人民医院", "浙江农林大学", "区消防救援大队"]),
                                   title=rng.choice(["高级工程师", "工程师", "副教授", "主任医师", "正高级工程师"])))

    # Warehouses: one district reserve, one per town, one per village.
    out["warehouses"].append(base("CK", 1, "临安区应急物资储备库", placer.district, district_seat,
                                  tier=Tier.DISTRICT, floor_area_m2=2400, keeper=_person(rng)))
    for town in placer.towns:
        out["warehouses"].append(base("CK", 1, f"{town.name}应急物资仓库", town, placer.seat_village(town),
                                      tier=Tier.TOWN, floor_area_m2=rng.choice([200, 300, 400, 500]),
                                      keeper=_person(rng)))
        for v in placer.by_town[town.code]:
            out["warehouses"].append(base("CK", 1, f"{v.name}应急物资储备点", v, tier=Tier.VILLAGE,
                                          floor_area_m2=rng.choice([20, 30, 40, 60]), keeper=_person(rng)))

    # Shelters: 3 district centres (≥200), 1–2 per town (≥100), one point per village (≥50).
    def shelter(prefix_n, name, region, village, level, capacity, stype):
        area = round(capacity * rng.uniform(2.0, 4.0), 0)
        return base("BN", prefix_n, name, region, village, level=level, shelter_type=stype,
                    duration={ShelterLevel.DISTRICT: ShelterDuration.LONG, ShelterLevel.TOWN: ShelterDuration.MEDIUM,
                              ShelterLevel.VILLAGE: ShelterDuration.SHORT}[level],
                    capacity=capacity, floor_area_m2=area, has_kitchen=level != ShelterLevel.VILLAGE,
                    has_medical=level == ShelterLevel.DISTRICT or rng.random() < 0.3,
                    accessible=level != ShelterLevel.VILLAGE or rng.random() < 0.3,
                    standardised=rng.random() < 0.85)

    for i, (tname, label) in enumerate([("锦城街道", "临安区体育馆避灾安置中心"), ("玲珑街道", "临安区第一避灾安置中心"),
                                        ("昌化镇", "临安区昌化避灾安置中心")], start=1):
        town = next(t for t in placer.towns if t.name == tname)
        out["shelters"].append(shelter(90 + i, label, placer.district, placer.seat_village(town), ShelterLevel.DISTRICT,
                                       rng.randint(300, 800), ShelterType.GYM))
    for town in placer.towns:
        for j in range(1 + (rng.random() < 0.5)):
            out["shelters"].append(shelter(1 + j, f"{town.name}避灾安置中心" + ("(二)" if j else ""), town,
                                           placer.village_in(town) if j else placer.seat_village(town),
                                           ShelterLevel.TOWN, rng.randint(100, 350),
                                           rng.choice([ShelterType.SCHOOL, ShelterType.PURPOSE_BUILT])))
        for v in placer.by_town[town.code]:
            out["shelters"].append(shelter(1, f"{v.name}避灾安置点", v, v, ShelterLevel.VILLAGE,
                                           rng.randint(50, 150),
                                           rng.choice([ShelterType.AUDITORIUM, ShelterType.COMMUNITY,
                                                       ShelterType.SCHOOL])))

    # Equipment held at warehouses and team bases.
    holders = out["warehouses"] + [t for t in out["teams"] if t["tier"] != Tier.VILLAGE]
    village_holders = [t for t in out["teams"] if t["tier"] == Tier.VILLAGE]
    types = list(EquipmentType)
    for holder in holders:
        for _ in range(rng.randint(4, 14) if holder.get("tier") != Tier.VILLAGE else rng.randint(2, 6)):
            out["equipment"].append(_equipment(holder, types, rng, next_n))
    for holder in village_holders:
        for _ in range(rng.randint(3, 8)):
            out["equipment"].append(_equipment(holder, types, rng, next_n))
    return out


def _equipment(holder: dict, types, rng, next_n) -> dict:
    etype = rng.choice(types)
    region = holder["region"]
    n = next_n("ZB" + region.code)
    return {"code": f"ZB{region.code[6:]}{n:04d}", "name": f"{etype.label}", "region": region,
            "lon": round(holder["lon"] + rng.uniform(-0.0004, 0.0004), 6),
            "lat": round(holder["lat"] + rng.uniform(-0.0004, 0.0004), 6),
            "address": holder["address"], "contact": holder["contact"], "phone": holder["phone"],
            "equipment_type": etype, "model_spec": rng.choice(["", "标准型", "大功率", "便携式"]),
            "quantity": rng.randint(1, 12),
            "status": rng.choices(list(EquipmentStatus), weights=[85, 8, 5, 2])[0], "owner_unit": holder["name"]}


def build_records(ctx) -> dict[str, int]:
    """Create every registry's demo records through the services (inside the demo's transaction)."""
    records = _records(_Placer(ctx.regions, ctx.rng), ctx.rng)
    counts = {}
    for slug, rows in records.items():
        kind = get_kind(slug)
        counts[slug] = bulk_create_records(ctx.actor, kind, [kind.model(**row) for row in rows],
                                           event_type="generated")
    return counts


# The towns the demo storm hits hardest (sensing/demo/simulate.py) have opened shelters for the people moved out
# of the geological-hazard and flash-flood zones; the rest stay closed, as between events.
OPENED_IN = ("龙岗镇", "岛石镇", "清凉峰镇")


def open_demo_shelters(ctx) -> dict[str, int]:
    """Open the town shelter centres and a few village shelters of the hardest-hit towns, with people in them,
    through the availability service (history and events as in real use)."""
    from .models import Shelter
    from .services import set_availability

    towns = [r for r in ctx.regions.values() if r.level == "town" and r.name in OPENED_IN]
    opened = 0
    for town in sorted(towns, key=lambda r: r.code):
        shelters = list(Shelter.objects.filter(region__code__startswith=town.code).select_related("region")
                        .order_by("-capacity", "code")[:4])
        for i, shelter in enumerate(shelters):
            share = (0.35, 0.6, 1.0, 0.0)[i]  # one full, one closed, two taking people
            people = int(shelter.capacity * share)
            status = "closed" if share == 0 else "open"
            set_availability(ctx.actor, shelter, status=status, occupancy=people, note="演示:台风转移安置")
            opened += status == "open"
    return {"shelters_opened": opened}
