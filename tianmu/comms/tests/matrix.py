"""What comms gives the authorisation matrix (declared on CommsConfig.matrix): a dispatch to village B1 (蔺一村)
with its delivery, fresh write cases for every comms write route, and the check that no refused write cancelled
or confirmed anything. The one-tap link (comms/c/<token>/) is authorised by its signed token, not by a role:
test_write_matrix lists it among the public POSTs, and test_confirm.py tests it."""

from __future__ import annotations

from tianmu.core.plugins import MatrixObjects, WriteCase


def matrix_objects(records, world) -> MatrixObjects:
    from tianmu.comms.models import Delivery, Dispatch
    from tianmu.comms.services import dispatch

    admin = world["users"]["admin"]
    village_b = world["village_b"]

    def fresh() -> tuple[Dispatch, Delivery]:
        d = dispatch(admin, source="matrix", subject_id="b", title="蔺一村山洪预警", text="蔺一村请转移",
                     level="red", regions=[village_b.code])
        return d, d.deliveries.order_by("pk").first()

    d, delivery = fresh()
    assert delivery is not None, "the records fixture puts a responsible person in village B1"

    def unchanged(role: str) -> None:
        d.refresh_from_db()
        delivery.refresh_from_db()
        assert d.status == "active" and delivery.confirmed_at is None, role

    def send_case() -> WriteCase:
        return WriteCase("comms.dispatch.send", body={"title": "蔺一村巡查指令", "text": "请立即巡查",
                                                      "level": "orange", "regions": [village_b.code]})

    def send_page_case() -> WriteCase:
        return WriteCase("comms.dispatch.send", body={"title": "蔺一村巡查指令", "text": "请立即巡查",
                                                      "level": "orange", "regions": [village_b.code],
                                                      "confirm": "auto"})

    def cancel_case() -> WriteCase:
        new, _row = fresh()
        return WriteCase("comms.dispatch.cancel", params={"dispatch_id": str(new.pk), "pk": str(new.pk)})

    def confirm_case() -> WriteCase:
        _new, row = fresh()
        return WriteCase("comms.delivery.confirm", params={"delivery_id": str(row.pk), "pk": str(row.pk)})

    def report_case() -> WriteCase:
        _new, row = fresh()
        Delivery.objects.filter(pk=row.pk).update(status="sent")
        return WriteCase("comms.reports.submit", body={"out_id": row.key, "status": "delivered"},
                         fingerprint=lambda: Delivery.objects.get(pk=row.pk).status)

    api = "/api/v1/comms"
    return MatrixObjects(
        params={"dispatch_id": str(d.pk), "delivery_id": str(delivery.pk), "token": "forged-token"},
        route_params={"comms/dispatches/": {"pk": str(d.pk)}, "comms/deliveries/": {"pk": str(delivery.pk)}},
        unchanged=[unchanged],
        writes={
            f"POST {api}/dispatches": send_case,
            f"POST {api}/dispatches/{{dispatch_id}}/cancel": cancel_case,
            f"POST {api}/deliveries/{{delivery_id}}/confirm": confirm_case,
            f"POST {api}/reports": report_case,
            "POST comms/dispatches/new/": send_page_case,
            "POST comms/dispatches/<int:pk>/cancel/": cancel_case,
            "POST comms/deliveries/<int:pk>/confirm/": confirm_case,
        },
    )
