"""What the base-data app gives the authorisation matrix (RegistryConfig.matrix): a fresh write case for a
shelter's availability, through the API and the detail page's form, on a shelter in town B (蔺镇)."""

from __future__ import annotations

from tianmu.core.plugins import MatrixObjects, WriteCase


def matrix_objects(records, world) -> MatrixObjects:
    from tianmu.conftest import record_data
    from tianmu.core.registry.kinds import get_kind
    from tianmu.core.registry.services import create_record

    kind = get_kind("shelters")
    counter = iter(range(1, 100_000))

    def case() -> WriteCase:
        shelter = create_record(world["users"]["admin"], kind,
                                record_data(kind, world["village_b"], f"av{next(counter)}"))
        return WriteCase("registry.shelter.availability", params={"record_id": str(shelter.pk), "pk": str(shelter.pk)},
                         body={"status": "open", "occupancy": 5, "note": "矩阵测试"})

    return MatrixObjects(writes={
        "POST /api/v1/shelters/{record_id}/availability": case,
        "POST registry/shelters/<int:pk>/availability/": case,
    })
