"""The warning's lifecycle (core/workflow.py): draft → submitted → approved → issued → updated | cancelled |
expired, with "reject" sending a submitted or approved warning back to its author.

These are the people's transitions. The two the system makes are in services.py, as sensing's rules open and
clear alarms: a version becomes "updated" when its next version is issued (in the same transaction), and
"expired" when the periodic task finds its validity over; both emit their declared events.

From this declaration come the permission rows "warnings.warning.<transition>", the service
(`WARNING.perform`), the page buttons' checks and the events "warnings.warning.<event>". The rules the table
cannot express are checked in the `apply` hooks, inside the transition's transaction, so every path (API, page,
generic view, demo) obeys them:
  - approve: orange and red need a second person: never the author (who drafted or submitted it);
  - issue: not after its own expiry; writes the CAP message (Alert, or Update of the previous version) and
    retires the previous version (services.supersede);
  - cancel: writes the CAP Cancel message; external warnings are read-only."""

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
    from .services import supersede

    if w.previous_id is not None:  # the previous version is replaced by this one
        supersede(w, actor=step.actor, at=step.at)


def _cancelled(w: HazardWarning, step: Step) -> None:
    from .services import publish_message

    _read_only(w)
    w.ended_by, w.ended_at, w.end_note = step.actor, step.at, step.note
    publish_message(w, "Cancel", step.at)


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
        Transition("cancel", [S.ISSUED], S.CANCELLED, _("解除"), event="cancelled", grants=DRAFTERS,
                   note=REQUIRED, apply=_cancelled, state_error=_("只有已发布的预警可以解除"),
                   note_error=_("解除预警须填写说明"), description=_("预警已解除(CAP Cancel)"), style="danger"),
    ],
    payload=_payload, payload_schema=WarningPayload, subject=HazardWarning.subject, visible=_visible,
    related=("region", "previous"),
)
