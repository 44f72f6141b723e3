"""Event types of the base-data app. Every one comes from a record kind (kinds.py): registering a kind declares
`registry.{model}.created / updated / deleted / imported / generated` (core/registry/events.py). Declare here
any type of this app that is not a record change; see /events/catalogue/ for them all."""

from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel, Field

from tianmu.core.eventtypes import declare

__all__ = ["ShelterAvailability"]


class ShelterAvailability(BaseModel):
    code: str
    name: str
    status: str = Field(description=_("open / full / closed"))
    occupancy: int
    capacity: int
    free_places: int = Field(description=_("开放时为容纳人数减在住人数,否则为 0"))
    previous_status: str
    previous_occupancy: int
    note: str = ""


declare("registry.shelter.availability_changed", ShelterAvailability, _("更新了避灾安置场所的开放状态和在住人数"),
        emitted_by="registry.services.set_availability")
