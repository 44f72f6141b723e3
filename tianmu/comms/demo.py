"""The demo step "comms.recipients" (declared on CommsConfig): the responsible persons of the Lin'an demo.

The district's duty room, a flood-control lead for every town, a lead for about half of the villages (always the
ones demo users are homed in), hazard-point monitors for the major and high-risk geological zones of the sampled
villages, and a manager for every town-level shelter — each with a superior (village → town → district duty
room), subscriptions, and invented mobiles in 199-0112-xxxx (a range that looks reserved; nobody is called).
The demo users are linked to their persons: `duty` to the duty room, `longgang` and `jincheng` to their towns'
leads, `village` to its village's lead, so their inbox shows what the network sends them."""

from __future__ import annotations

import random

from tianmu.core.models import Region, User
from tianmu.core.registry.services import bulk_create_records
from tianmu.registry.models import HazardSource, Shelter

from .choices import Duty
from .kinds import RecipientKind
from .models import Recipient

__all__ = ["build_recipients"]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文斌海波宁辉鹏飞林峰晨"
VILLAGE_SHARE = 0.5


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def build_recipients(ctx) -> dict[str, int]:
    rng = random.Random(f"{ctx.seed}-comms")
    regions = ctx.regions
    district = next(r for r in regions.values() if r.level == "district")
    towns = sorted((r for r in regions.values() if r.level == "town"), key=lambda r: r.code)
    villages = sorted((r for r in regions.values() if r.level == "village"), key=lambda r: r.code)
    homes = dict(User.objects.filter(username__in=["duty", "longgang", "jincheng", "village"])
                 .values_list("username", "region__code"))
    serial = iter(range(1, 100_000))

    def person(region: Region, duty: str, superior=None, **extra) -> Recipient:
        n = next(serial)
        return Recipient(code=f"ZR{n:05d}", name=extra.pop("name", None) or _name(rng), region=region, duty=duty,
                         mobile=f"1990112{n:04d}", superior=superior, **extra)

    def save(objs: list[Recipient]) -> list[Recipient]:
        bulk_create_records(ctx.actor, RecipientKind, objs, event_type="generated")
        return list(Recipient.objects.filter(code__in=[o.code for o in objs]).order_by("code"))

    room = save([person(district, Duty.DUTY_OFFICER, name="区防指值班室", position="区应急管理局值班室",
                        channels="inbox,sms,dingtalk", account="duty")])[0]
    town_leads = {}
    for lead in save([person(t, Duty.TOWN_LEAD, room, position="分管副镇长" if t.kind != "街道" else "分管副主任",
                             channels="inbox,sms,dingtalk",
                             account={homes.get("longgang"): "longgang", homes.get("jincheng"): "jincheng"}.get(
                                 t.code, ""))
                      for t in towns]):
        town_leads[lead.region.code] = lead
    sampled = [v for v in villages if rng.random() < VILLAGE_SHARE or v.code == homes.get("village")]
    village_leads = {}
    for lead in save([person(v, Duty.VILLAGE_LEAD, town_leads[v.code[:9]], position="村委会主任",
                             channels="inbox,sms" if v.code == homes.get("village") else "sms,dingtalk",
                             account="village" if v.code == homes.get("village") else "")
                      for v in sampled]):
        village_leads[lead.region.code] = lead
    zones = (HazardSource.objects.filter(region__code__in=list(village_leads), hazard_type="geological",
                                         risk_level__in=["major", "high"]).select_related("region").order_by("code"))
    monitors = save([person(z.region, Duty.MONITOR, village_leads[z.region.code], position="地质灾害隐患点监测员",
                            hazard_source=z, channels="sms,broadcast", broadcast_point=f"GB{z.region.code[6:]}",
                            hazard_types="rainstorm,typhoon,geological,flash_flood")
                     for z in zones[:400]])
    shelters = Shelter.objects.filter(region__code__in=[*town_leads, *village_leads], level="town").select_related(
        "region").order_by("code")
    managers = save([person(s.region, Duty.SHELTER_MANAGER, town_leads.get(s.region.code[:9]), position="避灾安置场所管理员",
                            shelter=s, channels="sms,dingtalk", min_level="yellow")
                     for s in shelters[:120]])
    total = 1 + len(town_leads) + len(village_leads) + len(monitors) + len(managers)
    return {"recipients": total}


def demo_order(ctx) -> str:
    """The replay step "comms.order": the duty officer orders 龙岗镇 (the demo users' town) to prepare for the
    typhoon, with call-and-respond; the send worker runs once in-process, so the linked users' inboxes show it and
    the board lists who has not confirmed. Without gateways configured, SMS and DingTalk are "not configured":
    those persons appear on the board for the duty officer to call."""
    from .sending import SendWorker
    from .services import confirm, dispatch

    duty = User.objects.get(username="duty")
    town = Region.objects.filter(level="town", name="龙岗镇").first()
    if town is None:
        return ""
    d = dispatch(duty, source="comms.order", subject_id="", title="台风防御工作指令",
                 text="受台风影响,今夜到明天有大暴雨。请立即组织地质灾害隐患点和山洪危险区人员转移,落实值班值守,"
                      "转移完成后报告。", level="orange", regions=[town.code], hazard_types=["typhoon", "rainstorm"])
    SendWorker(poll=0).run(once=True)
    lead = d.deliveries.filter(recipient__duty=Duty.TOWN_LEAD, recipient__account="longgang").first()
    if lead is not None:
        confirm(User.objects.get(username="longgang"), lead)
    return f"指挥通信: 向龙岗镇下达台风防御指令,{d.deliveries.values('recipient').distinct().count()} 名责任人,叫应看板 /comms/board/"
