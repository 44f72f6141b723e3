"""The base data's own API routes beyond those every record kind has (core/registry/api.py): a shelter's
availability, POST /api/v1/shelters/{id}/availability."""

from __future__ import annotations

from typing import Literal

from django.shortcuts import get_object_or_404
from ninja import Router, Schema
from pydantic import Field

from tianmu.core.registry.api import serialize
from tianmu.core.registry.queries import visible

from .choices import ShelterStatus
from .kinds import ShelterKind
from .services import MAX_NOTE, MAX_OCCUPANCY, set_availability

__all__ = ["router"]

router = Router(tags=[f"registry · shelters · {ShelterKind.verbose_name_plural()}"])


class AvailabilityIn(Schema):
    status: Literal[tuple(ShelterStatus.values)] = Field(..., description="open, full or closed")
    occupancy: int = Field(..., ge=0, le=MAX_OCCUPANCY, description="people in the shelter now (≤ capacity)")
    note: str = Field("", max_length=MAX_NOTE, description="why (kept in the history and the event)")


@router.post("/{record_id}/availability", operation_id="shelters_availability",
             summary="Set a shelter's state (open / full / closed) and occupancy; the shelter's town and the district",
             description="Occupancy may not exceed capacity; a closed shelter holds nobody; an open shelter with every "
                         "place taken is stored as full. Emits registry.shelter.availability_changed.")
def availability(request, record_id: int, payload: AvailabilityIn):
    shelter = get_object_or_404(visible(request.auth, ShelterKind), pk=record_id)
    saved = set_availability(request.auth, shelter, status=payload.status, occupancy=payload.occupancy,
                             note=payload.note)
    return serialize(ShelterKind, saved)
