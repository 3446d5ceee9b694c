"""Every route by every role, with the status each must get: a new route cannot ship
unprotected, because it fails ``test_every_route_has_an_entry`` until it is given one.

Roles: nobody signed in, the owner of the objects the URL names (Alice), another user
(Bob), and a staff user without model permissions. Another user's objects answer 404,
exactly like missing ones (never 403, which would say they exist); staff reach users'
data only through the admin, never through the app's own URLs. The admin is one group
(Django's own routes), checked at its index and at a model page.
"""

import json
from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import DataExport
from exports.models import ExportJob
from exports.routing import websocket_urlpatterns
from exports.tests.helpers import export_socket
from games import chunked
from games.models import Game, Play
from projects.models import FinalVideo
from projects.tests.helpers import client_for, in_user_db, store_media
from projects.tests.test_isolation import CROP, alices  # noqa: F401 (a fixture)
from sharing import links
from sharing.models import ShareLink

ROLES = ("anonymous", "owner", "other", "staff")


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # with {project}, {clip}, {game}, {play}, {upload}, {job}, {export}, {media}
    expect: dict = field(default_factory=dict)  # role -> status
    body: dict | None = None


def page(ok=200):
    """A page any signed-in user has; anonymous is sent to sign in."""
    return {"anonymous": 302, "owner": ok, "other": ok, "staff": ok}


def owned_page(ok=200):
    return {"anonymous": 302, "owner": ok, "other": 404, "staff": 404}


def api(ok=200):
    return {"anonymous": 401, "owner": ok, "other": ok, "staff": ok}


def owned_api(ok=200):
    return {"anonymous": 401, "owner": ok, "other": 404, "staff": 404}


def public(ok=200, signed_in=None):
    return {"anonymous": ok, **dict.fromkeys(("owner", "other", "staff"), signed_in or ok)}


ROUTES = {
    "": Case("GET", "/", page()),
    "projects/<int:project_id>/": Case("GET", "/projects/{project}/", owned_page()),
    "projects/<int:project_id>/overlay/": Case("GET", "/projects/{project}/overlay/", owned_page()),
    "projects/<int:project_id>/gallery/": Case("GET", "/projects/{project}/gallery/", owned_page()),
    "projects/<int:project_id>/title-card.png": Case(
        "GET", "/projects/{project}/title-card.png", owned_page()
    ),
    "api/projects": Case("GET", "/api/projects", api()),
    "api/projects/<int:project_id>": Case("DELETE", "/api/projects/{project}", owned_api(204)),
    "api/projects/<int:project_id>/open": Case(
        "POST", "/api/projects/{project}/open", owned_api(), body={}
    ),
    "api/projects/<int:project_id>/clips": Case(
        "POST", "/api/projects/{project}/clips", owned_api(400), body={}
    ),
    "api/projects/<int:project_id>/clips/<int:clip_id>": Case(
        "PATCH", "/api/projects/{project}/clips/{clip}", owned_api(), body=CROP
    ),
    "api/projects/<int:project_id>/clips/<int:clip_id>/follow": Case(
        "POST", "/api/projects/{project}/clips/{clip}/follow", owned_api(202), body={}
    ),
    "api/projects/<int:project_id>/highlights": Case(
        "GET", "/api/projects/{project}/highlights", owned_api()
    ),
    "api/projects/<int:project_id>/working-video": Case(
        "GET", "/api/projects/{project}/working-video", owned_api()
    ),
    "api/projects/<int:project_id>/final-videos": Case(
        "GET", "/api/projects/{project}/final-videos", owned_api()
    ),
    "api/projects/<int:project_id>/clips/from-plays": Case(
        "POST", "/api/projects/{project}/clips/from-plays", owned_api(400), body={"play_ids": []}
    ),
    "games/": Case("GET", "/games/", page()),
    "games/<int:game_id>/": Case("GET", "/games/{game}/", owned_page()),
    "api/games": Case("GET", "/api/games", api()),
    "api/games/uploads": Case(
        "POST", "/api/games/uploads", api(201), body={"filename": "m.mp4", "size": 10}
    ),
    "api/games/uploads/<str:upload_id>": Case("GET", "/api/games/uploads/{upload}", owned_api()),
    "api/games/uploads/<str:upload_id>/chunks/<int:index>": Case(
        "PUT", "/api/games/uploads/{upload}/chunks/0", owned_api(400), body={}
    ),
    "api/games/uploads/<str:upload_id>/complete": Case(
        "POST", "/api/games/uploads/{upload}/complete", owned_api(409), body={}
    ),
    "api/games/<int:game_id>": Case("GET", "/api/games/{game}", owned_api()),
    "api/games/<int:game_id>/plays": Case("GET", "/api/games/{game}/plays", owned_api()),
    "api/games/<int:game_id>/plays/<int:play_id>": Case(
        "PATCH", "/api/games/{game}/plays/{play}", owned_api(), body={"rating": 3}
    ),
    "api/plays": Case("GET", "/api/plays", api()),
    "api/projects/<int:project_id>/final-videos/<int:video_id>/share-links": Case(
        "GET", "/api/projects/{project}/final-videos/{final}/share-links", owned_api()
    ),
    "api/share-links/<int:link_id>": Case("DELETE", "/api/share-links/{link}", owned_api()),
    # Public: anyone with the token; an unknown token is the same 404 for everyone.
    "s/<str:token>/": Case("GET", "/s/{token}/", public()),
    "s/<str:token>/video.mp4": Case("GET", "/s/{token}/video.mp4", public()),
    "s/<str:token>/poster.jpg": Case("GET", "/s/{token}/poster.jpg", public(404)),
    "api/sync/status": Case("GET", "/api/sync/status", api()),
    "api/sync/retry": Case("POST", "/api/sync/retry", api(), body={}),
    # Version 1 is Alice's (her first write); Bob and staff have none: 404 like missing.
    "history/": Case("GET", "/history/", page()),
    "history/<int:version>/": Case("GET", "/history/1/", owned_page()),
    "history/<int:version>/restore": Case("POST", "/history/1/restore", owned_page(302), body={}),
    "api/projects/<int:project_id>/exports": Case(
        "GET", "/api/projects/{project}/exports", owned_api()
    ),
    "api/exports/options": Case("GET", "/api/exports/options", api()),
    "api/exports/<uuid:job_id>": Case("GET", "/api/exports/{job}", owned_api()),
    "api/exports/<uuid:job_id>/retry": Case(
        "POST", "/api/exports/{job}/retry", owned_api(409), body={}
    ),
    "media/<path:name>": Case("GET", "/media/{media}", owned_page()),
    "accounts/signup/": Case("GET", "/accounts/signup/", public(200, signed_in=302)),
    "accounts/login/": Case("GET", "/accounts/login/", public()),
    "accounts/logout/": Case("POST", "/accounts/logout/", public(302)),
    "accounts/password/reset/": Case("GET", "/accounts/password/reset/", public()),
    "accounts/password/reset/sent/": Case("GET", "/accounts/password/reset/sent/", public()),
    "accounts/password/reset/<uidb64>/<token>/": Case(
        "GET",
        "/accounts/password/reset/MQ/bad-token/",
        public(),  # "This link no longer works"
    ),
    "accounts/password/reset/done/": Case("GET", "/accounts/password/reset/done/", public()),
    "accounts/password/change/": Case("GET", "/accounts/password/change/", page()),
    "accounts/password/change/done/": Case("GET", "/accounts/password/change/done/", page()),
    "accounts/": Case("GET", "/accounts/", page()),
    "accounts/delete/": Case("GET", "/accounts/delete/", page()),
    "accounts/deleted/": Case("GET", "/accounts/deleted/", public()),
    "accounts/data-exports/": Case("POST", "/accounts/data-exports/", page(302), body={}),
    "accounts/data-exports/<uuid:export_id>": Case(
        "GET", "/accounts/data-exports/{export}", owned_page()
    ),
    "accounts/data-exports/<uuid:export_id>/download": Case(
        "GET", "/accounts/data-exports/{export}/download", owned_page()
    ),
    "admin/": Case("GET", "/admin/", {"anonymous": 302, "owner": 302, "other": 302, "staff": 200}),
    "healthz": Case("GET", "/healthz", public()),
    "readyz": Case("GET", "/readyz", public()),
    "metrics": Case("GET", "/metrics", public()),
    "csp-report": Case("POST", "/csp-report", public(204), body={"csp-report": {}}),
}
# Inside the admin group: a model page, for which staff need the model's permission.
ADMIN_MODEL_PAGE = Case(
    "GET",
    "/admin/exports/exportjob/",
    {"anonymous": 302, "owner": 302, "other": 302, "staff": 403},
)
# WebSocket routes: whether the connection is accepted.
WEBSOCKETS = {
    r"^ws/exports/(?P<job_id>[0-9a-f-]{36})/$": {
        "anonymous": False,
        "owner": True,
        "other": False,
        "staff": False,
    },
}


def http_routes(patterns=None, prefix=""):
    """Every route's full pattern; the admin's as one entry ("admin/")."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route == "admin/":
                yield route
            else:
                yield from http_routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route


def test_every_route_has_an_entry():
    routes = list(http_routes())
    assert len(routes) == len(set(routes))
    assert sorted(set(routes) - set(ROUTES)) == [], "routes without an entry in ROUTES"
    assert sorted(set(ROUTES) - set(routes)) == [], "entries in ROUTES for no route"
    sockets = {str(entry.pattern) for entry in websocket_urlpatterns}
    assert sockets == set(WEBSOCKETS)


@pytest.fixture
def world(alices, alice, bob, staff, settings):  # noqa: F811 (alices is the fixture)
    """Alice's objects, and a signed-in client (or none) per role."""
    job = ExportJob.objects.create(user=alice, project_id=alices["project"], kind="framing")
    zip_name = store_media(alice, "working", b"PK\x05\x06" + b"\x00" * 18)
    export = DataExport.objects.create(user=alice, status="ready", file=zip_name, size=22)
    game, play = alices_game(alice)
    upload = chunked.begin(alice.pk, "match.mp4", 3 * 1024 * 1024)
    final_id = alices_final_video(alice, alices["project"])
    link = ShareLink.objects.create(
        token=links.new_token(), user=alice, project_id=alices["project"],
        final_video_id=final_id, title="Final", file=alices["final_file"], width=1080,
        height=1920, duration=2.0,
    )  # fmt: skip
    values = {
        "final": final_id,
        "link": link.pk,
        "token": link.token,
        "game": game,
        "play": play,
        "upload": upload.id,
        "project": alices["project"],
        "clip": alices["clip"],
        "job": job.pk,
        "export": export.pk,
        "media": alices["clip_file"],
    }
    clients = {"anonymous": None, "owner": client_for(alice)}
    clients |= {"other": client_for(bob), "staff": client_for(staff)}
    return values, clients


def alices_final_video(alice, project_id) -> int:
    with in_user_db(alice):
        return FinalVideo.objects.filter(project_id=project_id).values_list("id", flat=True)[0]


def alices_game(alice) -> tuple[int, int]:
    """A ready game of Alice's with one play: (game id, play id)."""
    with in_user_db(alice):
        game = Game.objects.create(
            name="Cup final", upload_id="a" * 32, original_name="match.mp4",
            file=f"users/{alice.pk}/games/{'a' * 32}.mp4", size_bytes=1, duration=60.0,
            fps=30, width=320, height=180, status=Game.Status.READY,
        )  # fmt: skip
        play = Play.objects.create(game=game, start=1.0, end=5.0)
    return game.pk, play.pk


def answer(case: Case, world):
    from django.test import Client

    values, clients = world

    def status(role):
        client = clients[role] or Client()
        path = case.path.format(**values)
        data = json.dumps(case.body) if case.body is not None else None
        kwargs = {"content_type": "application/json"} if data is not None else {}
        response = getattr(client, case.method.lower())(path, data, **kwargs)
        if response.streaming:
            b"".join(response.streaming_content)
        return response.status_code

    return status


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", [*ROUTES, "admin model page"])
def test_each_role_gets_the_expected_status(route, role, local_store, world):
    case = ADMIN_MODEL_PAGE if route == "admin model page" else ROUTES[route]
    assert answer(case, world)(role) == case.expect[role], (case.method, case.path, role)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("role", ROLES)
async def test_each_role_is_accepted_or_refused_on_the_websocket(role, world, local_store):
    from asgiref.sync import sync_to_async

    values, clients = world
    [pattern] = WEBSOCKETS
    communicator = await sync_to_async(export_socket)(values["job"], clients[role])
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    assert connected == WEBSOCKETS[pattern][role]
