from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_safe

from tianmu.core.registry.queries import visible

from .kinds import NoticeKind

BOARD_SIZE = 20


@login_required
@require_safe
def board(request):
    """The latest notices the user may read."""
    notices = visible(request.user, NoticeKind).order_by("-created_at", "-pk")[:BOARD_SIZE]
    return render(request, "notices/board.html", {"kind": NoticeKind, "notices": notices})


def map_config(request) -> dict:
    """The command map's notices overlay: how many published notices the user may read."""
    from .models import NoticeStatus

    return {"published": visible(request.user, NoticeKind).filter(status=NoticeStatus.PUBLISHED).count()}
