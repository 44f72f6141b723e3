"""The base data's own pages beyond the generic record pages: a shelter's availability (the panel on its detail
page, and the form's POST)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from tianmu.core.errors import ServiceError
from tianmu.core.registry.queries import visible
from tianmu.core.scope import can

from .choices import ShelterStatus
from .kinds import ShelterKind
from .services import AVAILABILITY, MAX_NOTE, set_availability

__all__ = ["availability_panel", "availability_post"]


def _panel(request, shelter, *, data=None, errors=None) -> dict:
    """What the availability panel shows: the state, occupancy and free places, and the form when the user may
    change them (with what they typed and the per-field errors after a refused change)."""
    return {
        "shelter": shelter,
        "status_label": shelter.get_status_display(),
        "free_places": getattr(shelter, "free_places", None),
        "can_edit": can(request.user, AVAILABILITY, shelter.region),
        "statuses": ShelterStatus.choices,
        "data": data or {"status": shelter.status, "occupancy": shelter.occupancy, "note": ""},
        "errors": errors or {},
        "general_errors": (errors or {}).get("__all__", []),
        "max_note": MAX_NOTE,
    }


def availability_panel(request, kind, obj) -> dict:
    """RecordPanel context (RegistryConfig.record_panels) for a shelter's detail page."""
    return _panel(request, obj)


@login_required
@require_POST
def availability_post(request, pk: int):
    shelter = get_object_or_404(visible(request.user, ShelterKind), pk=pk)
    data = {"status": request.POST.get("status", ""), "occupancy": request.POST.get("occupancy", ""),
            "note": request.POST.get("note", "")}
    try:
        saved = set_availability(request.user, shelter, status=data["status"], occupancy=data["occupancy"],
                                 note=data["note"])
    except ServiceError as exc:
        errors = {field: [str(m) for m in msgs] for field, msgs in exc.errors.items()}
        return render(request, "registry/availability_form.html",
                      {"obj": shelter, "panel": _panel(request, shelter, data=data, errors=errors)}, status=400)
    messages.success(request, _("已更新开放状态:%(name)s %(status)s,在住 %(n)s 人") % {
        "name": saved.name, "status": saved.get_status_display(), "n": saved.occupancy})
    return redirect("records:detail", slug=ShelterKind.slug, pk=saved.pk)
