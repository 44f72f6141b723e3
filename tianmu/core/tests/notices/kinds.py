from tianmu.core.registry.kinds import RecordKind, register

from .lifecycles import NOTICE
from .models import Notice


@register
class NoticeKind(RecordKind):
    model = Notice
    slug = "notices"
    type_field = "category"
    filter_fields = ["category"]
    search_fields = ["code", "name", "body"]
    list_columns = ["code", "name", "region", "category"]
    example = {"category": "warning", "body": "今晚有暴雨,请做好防范。"}
    color = "#ad1457"
    lifecycle = NOTICE
