"""The responsible person (责任人) as a record kind: lists, filters, detail with history, Excel import/export,
API and the authorisation matrix come from core's framework. Mobile and office phone numbers are personal
data: shown in full only to roles with `comms.phones.view` (core/registry personal_fields)."""

from tianmu.core.registry.kinds import RecordKind, register

from .models import Recipient

__all__ = ["RecipientKind"]


@register
class RecipientKind(RecordKind):
    model = Recipient
    slug = "recipients"
    nav_group = "comms"
    type_field = "duty"
    filter_fields = ["duty", "min_level", "active"]
    search_fields = ["code", "name", "position", "account"]  # not the mobile: roles that see it masked could probe it
    list_columns = ["code", "name", "region", "duty", "position", "mobile", "superior"]
    io_fields = ["code", "name", "region", "duty", "position", "mobile", "phone", "dingtalk_user", "email",
                 "broadcast_point", "channels", "account", "superior", "hazard_source", "shelter", "watch_code",
                 "hazard_types", "min_level", "active", "notes"]
    personal_fields = ["mobile", "phone"]
    personal_action = "comms.phones.view"
    example = {"duty": "village_lead", "position": "村委会主任", "mobile": "13900000001", "channels": "inbox,sms",
               "hazard_types": "typhoon,rainstorm", "min_level": "blue", "active": True}
    color = "#5d4037"
