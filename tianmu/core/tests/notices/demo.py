from tianmu.core.registry.services import create_record

from .kinds import NoticeKind


def welcome_notice(ctx) -> dict[str, int]:
    """The demo step "notices.welcome": one district-wide notice, written by the demo's acting user (made by the
    step "demo.users") through the services."""
    district = next(r for r in ctx.regions.values() if r.level == "district")
    create_record(ctx.actor, NoticeKind, {"code": "TZ-0001", "name": "汛期值班安排", "region": district.code,
                                          "category": "work", "body": "汛期实行24小时值班。"})
    return {"notices": 1}
