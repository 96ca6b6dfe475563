"""The offline field app for couriers and volunteer team leaders: an installable web app (a
manifest and a service worker; plain JS, no build step) that keeps the day's routes or gate on
the phone and queues tracking events in IndexedDB while the network is gone.

The shell served here holds no personal data and needs no sign-in (a phone opens it from its
cache with no network); the app signs in to the JSON API for a bearer token, reads
``GET /api/v1/dispatch/my-day`` and sends its queue to ``POST /api/v1/dispatch/events:batch``,
the same endpoints a carrier's own app would use. Nothing is shown as delivered until the server
has accepted the event: the phone shows each event's answer (accepted, replayed, refused and why).
"""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from relieflink.web import i18n
from relieflink.web.operations import MODE_LABELS, PARCEL_LABELS, REASON_LABELS, ROUTE_LABELS
from relieflink.web.pages import N_, PageRouter
from relieflink.web.rendering import STATIC_DIR, render_page, request_lang

router = PageRouter()
SCOPE = "/field"

# The words field.js shows, in the page's language (message ids; see ``texts``).
TEXTS = {
    "sign_in": N_("Sign in"),
    "username": N_("Username"),
    "password": N_("Password"),
    "sign_out": N_("Sign out"),
    "wrong_credentials": N_("Wrong username or password."),
    "offline": N_("Offline: events wait on this phone and are sent when the network is back."),
    "online": N_("Online"),
    "sync": N_("Send now"),
    "syncing": N_("Sending…"),
    "saved_at": N_("Route saved on this phone at"),
    "no_day": N_("Nothing saved on this phone yet: connect once to load today's work."),
    "nothing_today": N_("Nothing to do today."),
    "confirmed": N_("Delivered (confirmed by the server)"),
    "waiting": N_("Waiting to be sent"),
    "refused_count": N_("Refused"),
    "route": N_("Route"),
    "stop": N_("Stop"),
    "team": N_("Team"),
    "depot": N_("From"),
    "loaded": N_("Loaded"),
    "departed": N_("Departed"),
    "arrived": N_("Arrived at the gate"),
    "handed_off": N_("Handed off at the gate"),
    "delivered": N_("Delivered"),
    "failed": N_("Failed"),
    "packs": N_("packs"),
    "counted": N_("Parcels counted at the gate"),
    "code_for": N_("Pickup code for P%(id)s"),
    "code_hint": N_("The six digits the resident shows you."),
    "could_not": N_("Could not deliver?"),
    "why": N_("Why it failed"),
    "record_failed": N_("Record the failed delivery"),
    "code_needed": N_("Enter the six digits of the pickup code."),
    "events": N_("Events on this phone"),
    "state_queued": N_("waiting to be sent"),
    "state_accepted": N_("accepted"),
    "state_replayed": N_("accepted before (replayed): nothing changed"),
    "state_refused": N_("refused"),
    "wrong_code": N_("Wrong pickup code: nothing was delivered."),
    "pending_here": N_("Recorded on this phone; not delivered until the server accepts it."),
    "session_over": N_("Your sign-in has expired: sign in again to send the events."),
    "no_work": N_("The field app is for couriers and volunteer team leaders."),
}


def texts(lang: str) -> dict[str, object]:
    """Every word field.js shows, translated, with the shared state and reason labels."""
    gettext = i18n.translations(lang).gettext
    return {
        **{key: gettext(message) for key, message in TEXTS.items()},
        "parcel": {str(k): gettext(v) for k, v in PARCEL_LABELS.items()},
        "route_status": {str(k): gettext(v) for k, v in ROUTE_LABELS.items()},
        "reason": {str(k): gettext(v) for k, v in REASON_LABELS.items()},
        "mode": {str(k): gettext(v) for k, v in MODE_LABELS.items()},
    }


@router.get(SCOPE, response_class=HTMLResponse)
def field_app(request: Request) -> HTMLResponse:
    """The app's shell (cached by the service worker; the day's data lives in IndexedDB)."""
    lang = request_lang(request)
    context = {"texts": texts(lang), "scope": SCOPE}
    return render_page(request, "field/app.html", context)


@router.get("/field.webmanifest")
def manifest(request: Request) -> Response:
    """The web app manifest: installable, opens full screen at the app's shell."""
    gettext = i18n.translations(request_lang(request)).gettext
    body = {
        "name": gettext("RelieFlink field app"),
        "short_name": gettext("Field app"),
        "start_url": SCOPE,
        "scope": SCOPE,
        "display": "standalone",
        "background_color": "#f6f7f9",
        "theme_color": "#0b5cad",
        "icons": [
            {"src": "/static/field/icon.svg", "sizes": "any", "type": "image/svg+xml"},
            {"src": "/static/field/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/static/field/icon-512.png", "sizes": "512x512", "type": "image/png"},
        ],
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/manifest+json")


@router.get("/field-sw.js")
def service_worker() -> FileResponse:
    """The service worker, served from the site's root so that its scope can be ``/field``;
    never cached by HTTP (a new version must reach the phone at its next visit)."""
    return FileResponse(
        STATIC_DIR / "field" / "sw.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )
