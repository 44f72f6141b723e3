"""The notice's two-step lifecycle: a writer submits a draft; a commander or district administrator publishes
it, with a second person confirming (the two-person rule). Everything else follows from this declaration."""

from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel

from tianmu.core.choices import Role
from tianmu.core.scope import HOME, WRITERS
from tianmu.core.workflow import REQUIRED, Lifecycle, Transition

from .models import Notice, NoticeStatus


class NoticePayload(BaseModel):
    """What every notice transition's event carries (besides from/to state, note and approver)."""

    id: int
    code: str


NOTICE = Lifecycle(
    "notices.notice", Notice,
    states=dict(NoticeStatus.choices),
    transitions=[
        Transition("submit", [NoticeStatus.DRAFT], NoticeStatus.SUBMITTED, _("提交审核"), event="submitted",
                   grants={role: HOME for role in WRITERS}),
        Transition("publish", [NoticeStatus.SUBMITTED], NoticeStatus.PUBLISHED, _("发布"), event="published",
                   grants={Role.COMMANDER: HOME, Role.ADMIN: HOME}, note=REQUIRED, second_approver=True),
    ],
    payload=lambda n: {"id": n.pk, "code": n.code}, payload_schema=NoticePayload,
)
