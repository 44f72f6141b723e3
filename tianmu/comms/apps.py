from django.utils.translation import gettext_lazy as _

from tianmu.core import plugins, scope
from tianmu.core.choices import Role

from .conf import DEFAULTS


class CommsConfig(plugins.TianmuApp):
    """The command-communications network (指挥通信网): responsible persons and their channels, dispatches with
    call-and-respond (叫应). A platform app: it knows nothing of warnings or incidents, which call its services."""

    name = "tianmu.comms"
    label = "comms"
    verbose_name = _("指挥通信")
    api = [("/comms", "tianmu.comms.api:router")]
    urls = [("comms/", "tianmu.comms.urls")]
    menu = [
        plugins.MenuItem(_("叫应看板"), "comms:board", action="comms.board.view", order=45, key="comms"),
        plugins.MenuItem(_("我的消息"), "comms:inbox", order=90, key="inbox"),
    ]
    workers = {"comms-send": ["comms_send"]}
    demo_steps = [
        plugins.DemoStep("comms.recipients", "tianmu.comms.demo:build_recipients", after=("registry.records",)),
        plugins.DemoStep("comms.order", "tianmu.comms.demo:demo_order", after=("comms.recipients",), phase="replay"),
    ]
    matrix = "tianmu.comms.tests.matrix:matrix_objects"
    permissions = {
        # Send a message to the persons responsible for a region (warnings call dispatch() with their actor).
        "comms.dispatch.send": {role: scope.HOME for role in (Role.COMMANDER, Role.ADMIN, Role.TOWN_STAFF)},
        "comms.dispatch.cancel": {role: scope.HOME for role in (Role.COMMANDER, Role.ADMIN, Role.TOWN_STAFF)},
        # Confirm for someone else (a duty officer recording a phone call); a person always confirms their own.
        "comms.delivery.confirm": {role: scope.HOME for role in scope.WRITERS},
        # The call-and-respond board; leaders watch the whole district.
        "comms.board.view": {**{role: scope.HOME for role in scope.WRITERS}, Role.LEADER: scope.EVERYWHERE},
        # Delivery reports from a gateway's account (a department API client homed at the district).
        "comms.reports.submit": {Role.API_CLIENT: scope.HOME, Role.ADMIN: scope.DISTRICT_ONLY},
        # Mobile numbers in full (lists, exports, the API, the board): those who call people.
        "comms.phones.view": {role: scope.HOME for role in scope.WRITERS},
    }
    settings = DEFAULTS
