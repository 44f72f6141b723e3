"""The demo step "warnings.decisions" (replay phase, after the storm replay): the alarm-drafted warnings appear
through the real event handler, and the demo's people make the human decisions through the services, as they
would on the night: the duty officer reviews and submits the drafts, a second person approves the orange and red
ones, the duty officer issues them, updates one (a new version: CAP Update) and cancels another (CAP Cancel).
Nothing is issued without a person; nothing here writes a table directly."""

from __future__ import annotations

from django.utils import timezone

from tianmu.core.models import User

from . import services
from .choices import Origin, WarningState, level_rank
from .models import HazardWarning

__all__ = ["decisions_step", "make_decisions", "run_draft_handler"]

HANDLER = "tianmu.warnings.handlers.draft_from_alarms"


def run_draft_handler() -> int:
    """Let the draft handler catch up with the outbox (what `tianmu handle_events` does in production)."""
    from tianmu.core.consumers import run_handler
    from tianmu.core.eventtypes import handler

    handled = 0
    for _ in range(1000):
        result = run_handler(handler(HANDLER))
        handled += result.handled
        if not result.handled:
            break
    return handled


def _user(name: str) -> User | None:
    return User.objects.filter(username=name, is_active=True).first()


def decisions_step(ctx) -> str:
    """The replay step: what `tianmu demo` prints."""
    c = make_decisions()
    return (f"预警: 监测告警起草 {c['drafts']} 份草稿; 值班员签发 {c['issued']} 份(第二人审核), 更新 {c['updated']} 份, "
            f"解除 {c['cancelled']} 份; 其余 {c['drafts'] - c['issued']} 份待审核")


def make_decisions() -> dict:
    handled = run_draft_handler()
    duty, second = _user("duty"), _user("admin")
    counts = {"events": handled, "drafts": 0, "issued": 0, "updated": 0, "cancelled": 0}
    if duty is None or second is None:
        return counts
    drafts = sorted(HazardWarning.objects.filter(origin=Origin.ALARM, state=WarningState.DRAFT),
                    key=lambda w: (-level_rank(w.level), w.pk))
    counts["drafts"] = len(drafts)
    issued = []
    for w in drafts[:3]:  # the three most severe; the rest stay waiting for review, as on a real night
        services.submit(duty, w, note="值班员已核实告警读数")
        services.approve(second, w, note="复核同意发布")
        issued.append(services.issue(duty, w, note="签发"))
    counts["issued"] = len(issued)
    if issued:
        first = issued[0]
        revision = services.revise_warning(duty, first, {
            "expires": timezone.now() + timezone.timedelta(hours=12),
            "description": first.description + "\n(更新:降雨仍在持续,预警延长至 12 小时)"})
        services.submit(duty, revision, note="延长有效期")
        services.approve(second, revision, note="同意")
        services.issue(duty, revision)
        counts["updated"] = 1
    if len(issued) > 1:
        services.cancel(duty, issued[-1], note="雨势减弱,监测值回落,解除预警")
        counts["cancelled"] = 1
    return counts
