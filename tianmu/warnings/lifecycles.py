"""The warning's lifecycle (core/workflow.py): draft → submitted → approved → issued → updated | cancelled |
expired, with "reject" sending a submitted or approved warning back to its author.

From this declaration come the permission rows "warnings.warning.<transition>", the service
(`WARNING.perform`), the page buttons' checks and the events "warnings.warning.<event>". The rules the table
cannot express are checked in the `apply` hooks, inside the transition's transaction, so every path (API, page,
generic view, demo) obeys them:
  - approve: orange and red need a second person: never the author (who drafted or submitted it);
  - issue: not after its own expiry; writes the CAP message (Alert, or Update of the previous version) and
    retires the previous version ("update");
  - update: only by issuing a new version (services.revise_warning, then issue);
  - cancel: writes the CAP Cancel message; external warnings are read-only;
  - expire: only once the validity has ended (the periodic task, tasks.py)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from tianmu.core.choices import Role
from tianmu.core.errors import ServiceError
from tianmu.core.scope import HOME
from tianmu.core.workflow import REQUIRED, Lifecycle, Step, Transition

from .choices import WarningState as S
from .conf import conf
from .events import WarningPayload
from .models import HazardWarning

__all__ = ["WARNING", "DRAFTERS"]

# Who drafts, reviews and issues: the district's commander and administrators everywhere, town staff in their
# town. A warning for several towns belongs to the district (services.owner_region), so town staff cannot.
DRAFTERS = {role: HOME for role in (Role.COMMANDER, Role.ADMIN, Role.TOWN_STAFF)}


def _read_only(w: HazardWarning) -> None:
    if w.external:
        raise ServiceError({"state": [_("外部导入的预警是只读的,由原发布机关更新或解除")]})


def _submitted(w: HazardWarning, step: Step) -> None:
    _read_only(w)
    w.submitted_by, w.submitted_at = step.actor, step.at


def _rejected(w: HazardWarning, step: Step) -> None:
    _read_only(w)
    w.approved_by, w.approved_at = None, None


def _approved(w: HazardWarning, step: Step) -> None:
    _read_only(w)
    if w.level in conf("WARNINGS_FOUR_EYES_LEVELS"):
        authors = {w.created_by_id, w.submitted_by_id} - {None}
        if getattr(step.actor, "pk", None) in authors:
            raise ServiceError({"approver": [_("橙色、红色预警须由起草人以外的另一人审核(双人复核),起草人或提交人不能审核")]})
    w.approved_by, w.approved_at = step.actor, step.at


def _issued(w: HazardWarning, step: Step) -> None:
    from .services import publish_message

    _read_only(w)
    if w.expires <= step.at:
        raise ServiceError({"expires": [_("预警的失效时间已过,请修改有效期后重新提交")]})
    if w.previous_id is not None and w.previous.state != S.ISSUED:
        raise ServiceError({"previous": [_("上一版本已不在发布状态(已解除或过期),不能作为更新发布")]})
    w.issued_by, w.issued_at = step.actor, step.at
    publish_message(w, "Update" if w.previous_id else "Alert", step.at)


def _after_issue(w: HazardWarning, step: Step) -> None:
    if w.previous_id is not None:  # the previous version is replaced by this one
        prev = WARNING.lock(w.previous_id)
        WARNING.apply(prev, Step(actor=step.actor, transition=WARNING.transition("update"), note=step.note,
                                 at=step.at, extra={"by": w.pk}))


def _updated(w: HazardWarning, step: Step) -> None:
    if not step.extra.get("by"):
        raise ServiceError({"state": [_("更新预警请起草新版本并签发,新版本发布时旧版本自动标为已更新")]})
    w.ended_by, w.ended_at = step.actor if getattr(step.actor, "pk", None) else None, step.at


def _cancelled(w: HazardWarning, step: Step) -> None:
    from .services import publish_message

    _read_only(w)
    w.ended_by, w.ended_at, w.end_note = step.actor, step.at, step.note
    publish_message(w, "Cancel", step.at)


def _expired(w: HazardWarning, step: Step) -> None:
    if w.expires > step.at:
        raise ServiceError({"expires": [_("预警尚未到失效时间")]})
    w.ended_at = step.at


def _payload(w: HazardWarning) -> dict:
    from .services import payload

    return payload(w)


def _visible(actor):
    from .queries import visible

    return visible(actor)


WARNING = Lifecycle(
    "warnings.warning", HazardWarning, field="state",
    states=dict(S.choices),
    transitions=[
        Transition("submit", [S.DRAFT], S.SUBMITTED, _("提交审核"), event="submitted", grants=DRAFTERS,
                   apply=_submitted, state_error=_("只有草稿可以提交审核"), description=_("预警草稿提交审核")),
        Transition("reject", [S.SUBMITTED, S.APPROVED], S.DRAFT, _("退回修改"), event="rejected", grants=DRAFTERS,
                   note=REQUIRED, apply=_rejected, state_error=_("只有待审核或已审核未发布的预警可以退回"),
                   note_error=_("退回须说明原因"), description=_("审核人退回预警,回到草稿")),
        Transition("approve", [S.SUBMITTED], S.APPROVED, _("审核通过"), event="approved", grants=DRAFTERS,
                   apply=_approved, state_error=_("只有待审核的预警可以审核"), description=_("预警审核通过")),
        Transition("issue", [S.APPROVED], S.ISSUED, _("签发"), event="issued", grants=DRAFTERS,
                   apply=_issued, after=_after_issue, state_error=_("只有审核通过的预警可以签发"),
                   description=_("预警已签发(CAP Alert,或更新上一版本的 CAP Update)"), style="danger"),
        Transition("update", [S.ISSUED], S.UPDATED, _("被新版本替代"), event="updated", grants=DRAFTERS,
                   apply=_updated, state_error=_("只有已发布的预警可以更新"),
                   description=_("新版本签发,此版本被替代"), payload_fields={"by": (int | None, None)}),
        Transition("cancel", [S.ISSUED], S.CANCELLED, _("解除"), event="cancelled", grants=DRAFTERS,
                   note=REQUIRED, apply=_cancelled, state_error=_("只有已发布的预警可以解除"),
                   note_error=_("解除预警须填写说明"), description=_("预警已解除(CAP Cancel)"), style="danger"),
        # Nobody but the periodic task (tasks.py, as the system) expires a warning; superusers may.
        Transition("expire", [S.ISSUED], S.EXPIRED, _("到期"), event="expired", grants={}, apply=_expired,
                   state_error=_("只有已发布的预警会到期"), description=_("预警到了失效时间")),
    ],
    payload=_payload, payload_schema=WarningPayload, subject=HazardWarning.subject, visible=_visible,
    related=("region", "previous"),
)
