"""Pages of the command-communications network: the call-and-respond board (叫应看板, polled by htmx), the inbox
with confirm buttons, dispatches with their progress by town and village, the order form, and the one-tap
confirmation link (no login). No logic: services change, queries read."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from tianmu.core.choices import Hazard, WarningLevel
from tianmu.core.errors import ServiceError
from tianmu.core.models import Region
from tianmu.core.scope import action_prefix, can, check

from .choices import Channel, ConfirmVia, DeliveryStatus
from .links import read_token
from .models import Delivery
from .queries import board, inbox, progress, reachable_deliveries, visible_dispatches
from .services import cancel, confirm, dispatch

PAGE_SIZE = 30
SOURCES = {"comms.order": _("指挥指令")}


def _back(request, fallback: str, **kwargs):
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback, **kwargs)


@login_required
@require_safe
def board_page(request):
    """Who has not confirmed, per town and village, refreshed every 15 s (htmx polls the fragment)."""
    if action_prefix(request.user, "comms.board.view") is None:
        raise PermissionDenied
    data = board(request.user)
    template = "comms/_board.html" if request.GET.get("fragment") else "comms/board.html"
    return render(request, template, {"board": data, "can_confirm_for": can(request.user, "comms.delivery.confirm")})


@login_required
@require_safe
def inbox_page(request):
    return render(request, "comms/inbox.html", {"items": inbox(request.user)})


@login_required
@require_POST
def confirm_view(request, pk: int):
    """The inbox's confirm button, and the board's "confirmed by phone" (a duty officer for someone else)."""
    d = get_object_or_404(reachable_deliveries(request.user).select_related("recipient", "region"), pk=pk)
    own = bool(d.recipient.account) and d.recipient.account == request.user.username
    try:
        done = confirm(request.user, d, via=ConfirmVia.INBOX if own else ConfirmVia.PHONE)
    except PermissionDenied as exc:
        messages.error(request, str(getattr(exc, "message", exc)))
        return _back(request, "comms:inbox")
    messages.success(request, gettext("已确认收到") if done else gettext("此前已确认"))
    return _back(request, "comms:inbox")


@login_required
@require_safe
def dispatch_list(request):
    page = Paginator(visible_dispatches(request.user).select_related("created_by"), PAGE_SIZE).get_page(
        request.GET.get("page"))
    return render(request, "comms/dispatches.html", {"page": page,
                                                     "can_send": action_prefix(request.user, "comms.dispatch.send")
                                                     is not None})


@login_required
@require_safe
def dispatch_detail(request, pk: int):
    d = get_object_or_404(visible_dispatches(request.user).select_related("region", "created_by"), pk=pk)
    shown = progress(d, request.user)
    regions = dict(Region.objects.filter(code__in=d.regions).values_list("code", "name"))
    channels, statuses = dict(Channel.choices), dict(DeliveryStatus.choices)
    by_channel = [{"label": channels.get(c, c), "counts": [(statuses.get(st, st), n) for st, n in counts.items()]}
                  for c, counts in shown["channels"].items()]
    return render(request, "comms/dispatch.html", {
        "d": d, "p": shown, "region_names": [regions.get(c, c) for c in d.regions], "by_channel": by_channel,
        "source": SOURCES.get(d.source, d.source),
        "can_cancel": d.status == "active" and can(request.user, "comms.dispatch.cancel", d.region),
        "hazards": [Hazard(h).label for h in d.hazard_types if h in Hazard.values]})


@login_required
@require_POST
def dispatch_cancel(request, pk: int):
    d = get_object_or_404(visible_dispatches(request.user), pk=pk)
    try:
        n = cancel(request.user, d)
    except PermissionDenied as exc:
        messages.error(request, str(getattr(exc, "message", exc)))
    else:
        messages.success(request, gettext("已撤销,%(n)s条待发消息不再发送") % {"n": n})
    return redirect("comms:dispatch", pk=d.pk)


def _region_choices(user):
    prefix = action_prefix(user, "comms.dispatch.send")
    qs = Region.objects.order_by("code")
    return qs.filter(code__startswith=prefix) if prefix else qs


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def dispatch_new(request):
    """The order form (指令下达): a message to the persons responsible for the chosen regions."""
    check(request.user, "comms.dispatch.send")
    errors, values = {}, {"level": "", "confirm": "auto", "regions": [], "hazard_types": []}
    if request.method == "POST":
        values = {"title": request.POST.get("title", ""), "text": request.POST.get("text", ""),
                  "level": request.POST.get("level", ""), "regions": request.POST.getlist("regions"),
                  "hazard_types": request.POST.getlist("hazard_types"), "confirm": request.POST.get("confirm", "auto")}
        want = {"yes": True, "no": False}.get(values["confirm"])
        try:
            d = dispatch(request.user, source="comms.order", subject_id="", title=values["title"],
                         text=values["text"], level=values["level"], regions=values["regions"],
                         hazard_types=values["hazard_types"], confirm=want)
        except ServiceError as exc:
            errors = {("all" if e["field"] == "__all__" else e["field"]): e["message"] for e in exc.as_list()}
        except PermissionDenied as exc:
            errors = {"regions": str(getattr(exc, "message", exc))}
        else:
            messages.success(request, gettext("已下达,共%(n)s名责任人") % {"n": d.deliveries.count()})
            return redirect("comms:dispatch", pk=d.pk)
    return render(request, "comms/dispatch_new.html", {
        "regions": _region_choices(request.user), "levels": WarningLevel.choices, "hazards": Hazard.choices,
        "errors": errors, "v": values}, status=400 if errors else 200)


@require_http_methods(["GET", "HEAD", "POST"])
def link_page(request, token: str):
    """The one-tap confirmation link from an SMS or DingTalk message: no login. GET shows the message and a
    button (link previewers fetch GETs, so a GET never confirms); POST confirms, idempotently."""
    try:
        pk = read_token(token)
    except signing.SignatureExpired:
        return render(request, "comms/link.html", {"state": "expired"}, status=410)
    except signing.BadSignature:
        return render(request, "comms/link.html", {"state": "invalid"}, status=403)
    d = Delivery.objects.select_related("dispatch", "recipient", "region").filter(pk=pk).first()
    if d is None:
        raise Http404
    state = "confirmed" if d.confirmed_at else "ask"
    if request.method == "POST" and not d.confirmed_at:
        confirm(None, d, via=ConfirmVia.LINK)
        d.refresh_from_db(fields=["confirmed_at"])
        state = "done"
    return render(request, "comms/link.html", {"state": state, "d": d})
