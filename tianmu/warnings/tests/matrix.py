"""What warnings give the authorisation matrix (declared on WarningsConfig.matrix): warnings in town B (蔺镇) in
each state a route needs, the check that no refused write changed them, and a fresh write case for every
warnings route that changes something (API and pages)."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tianmu.core.plugins import MatrixObjects, WriteCase


def matrix_objects(records, world) -> MatrixObjects:
    from tianmu.warnings import services
    from tianmu.warnings.models import HazardWarning
    from tianmu.warnings.tests.helpers import cap_xml, draft_data, make_warning

    admin = world["users"]["admin"]
    town_b = world["town_b"]
    village_b = world["village_b"]
    base = make_warning(admin, town_b, "draft")
    snapshot = (base.state, base.headline, base.level)

    def unchanged(role: str) -> None:
        base.refresh_from_db()
        assert (base.state, base.headline, base.level) == snapshot, role

    def in_state(state: str) -> HazardWarning:
        return make_warning(admin, town_b, state)

    def transition(name: str, state: str, page: bool = False, **body) -> WriteCase:
        w = in_state(state)
        params = {"warning_id": str(w.pk), "pk": str(w.pk), "name": name}
        return WriteCase(f"warnings.warning.{name}", params=params, body=body)

    serial = iter(range(1, 100_000))

    def import_case() -> WriteCase:
        xml = cap_xml(identifier=f"330100000000_M{next(serial)}", code=village_b.code, lon=village_b.lon,
                      lat=village_b.lat)
        return WriteCase(services.IMPORT_ACTION, multipart=True,
                         body={"file": SimpleUploadedFile("alert.xml", xml, content_type="application/xml")})

    def create_case(page: bool = False) -> WriteCase:
        data = draft_data(village_b, headline=f"蔺镇矩阵预警{next(serial)}")
        if page:
            data = {**data, "expires": timezone.localtime(data["expires"]).strftime("%Y-%m-%dT%H:%M"),
                    "onset": ""}
        else:
            data = {**data, "expires": data["expires"].isoformat()}
        return WriteCase(services.DRAFT_ACTION, body=data)

    def edit_case(page: bool = False) -> WriteCase:
        w = in_state("draft")
        body = {"headline": f"蔺镇改后{next(serial)}"}
        if page:
            body = {**draft_data(village_b, headline=body["headline"]), "onset": ""}
            body["expires"] = timezone.localtime(body["expires"]).strftime("%Y-%m-%dT%H:%M")
        return WriteCase(services.DRAFT_ACTION, params={"warning_id": str(w.pk), "pk": str(w.pk)}, body=body)

    def revise_case() -> WriteCase:
        w = in_state("issued")
        return WriteCase(services.DRAFT_ACTION, params={"warning_id": str(w.pk), "pk": str(w.pk)}, body={})

    api = "/api/v1/warnings"
    writes = {
        f"POST {api}/": create_case,
        f"PATCH {api}/{{warning_id}}": edit_case,
        f"POST {api}/{{warning_id}}/revise": revise_case,
        f"POST {api}/{{warning_id}}/submit": lambda: transition("submit", "draft"),
        f"POST {api}/{{warning_id}}/reject": lambda: transition("reject", "submitted", note="请补充"),
        f"POST {api}/{{warning_id}}/approve": lambda: transition("approve", "submitted"),
        f"POST {api}/{{warning_id}}/issue": lambda: transition("issue", "approved"),
        f"POST {api}/{{warning_id}}/cancel": lambda: transition("cancel", "issued", note="解除"),
        f"POST {api}/import": import_case,
        "POST warnings/new/": lambda: create_case(page=True),
        "POST warnings/<int:pk>/edit/": lambda: edit_case(page=True),
        "POST warnings/<int:pk>/revise/": revise_case,
        "POST warnings/<int:pk>/act/<str:name>/": lambda: transition("submit", "draft"),
        "POST warnings/import/": import_case,
    }
    return MatrixObjects(
        params={"warning_id": str(base.pk)},
        route_params={"warnings/": {"pk": str(base.pk), "name": "submit"}},
        unchanged=[unchanged],
        writes=writes,
    )
