"""The syndicate's administrators manage the deployment's communes from their own pages (#34), through HTTP: list,
disable (refused at once to the commune's residents, audited), enable, add from a folder on the server with the
command line's checks; neither kind of account opens the other's pages. Fake models, as tests/unit/test_communes.py."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.engines.embedder import FakeEmbedder
from bot.settings import Settings
from bot.state.communes import CommuneRegistry
from bot.state.database import sqlite_url
from bot.web import communes as communes_module
from bot.web.app import create_app
from bot.web.communes import UNKNOWN, Communes
from bot.web.routes.syndicate import RELATIVE_FOLDER
from bot.web.staff.accounts import AccountStore
from bot.web.staff.consoles import BAD_LOGIN, EXPIRED_FORM
from bot.web.staff.syndicate import syndicate_accounts
from ingestion.builder import build
from tests.conftest import fake_answerer, write
from tests.unit.test_api import settled
from tests.unit.test_communes import (
    PASSWORD,
    POOL_PAGE,
    SECRET,
    ask,
    commune_folders,
    fake_models,
    montaigu_town,
)
from tests.unit.test_staff import PASSPORT, csrf_of

VALBOURG, MONTAIGU = {"host": "valbourg.example.fr"}, {"host": "montaigu.example.fr"}
PASSPORT_QUESTION = "prix du passeport majeur"


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Valbourg and Montaigu (Claire is Valbourg's administrator), and Lavaur's folder, ready to be added."""
    root = tmp_path_factory.mktemp("communes")
    found = commune_folders(root)
    AccountStore(found["valbourg"] / "staff").add("claire", "admin", PASSWORD)
    lavaur = root / "lavaur"
    write(lavaur / "town.yaml", montaigu_town())
    write(lavaur / "corpus" / "piscine.md", POOL_PAGE)
    build([lavaur / "corpus"], lavaur / "index", FakeEmbedder())
    return found | {"lavaur": lavaur}


def deployment(folders: dict[str, Path], tmp_path: Path) -> tuple[Settings, CommuneRegistry]:
    """A deployment's settings and registry: Valbourg and Montaigu registered, Marie its syndicate's administrator."""
    staff_dir = tmp_path / "deployment"
    registry = CommuneRegistry(sqlite_url(staff_dir / "guichet.db"))
    registry.add("valbourg", "Valbourg-sur-Loire", folders["valbourg"], ["valbourg.example.fr"], ["+33299001234"])
    registry.add("montaigu", "Montaigu-les-Prés", folders["montaigu"], ["montaigu.example.fr"], [])
    syndicate_accounts(staff_dir).add("marie", "syndicate", PASSWORD)
    settings = Settings(staff_dir=staff_dir, feedback_dir=tmp_path / "feedback", voice_webhook_secret=SECRET)
    return settings, registry


def served_app(settings: Settings, registry: CommuneRegistry, tmp_path: Path):
    """One worker serving the registry's enabled communes, as ``guichet serve`` starts it."""
    communes = Communes.build(registry.enabled(), settings, load_answerer=fake_models(tmp_path), registry=registry)
    return create_app(None, settings, communes=communes)


@pytest.fixture
def syndicate(folders, tmp_path):
    """A browser on the deployment (one worker), signed in as Marie; the registry and the deployment's settings."""
    settings, registry = deployment(folders, tmp_path)
    with TestClient(served_app(settings, registry, tmp_path), follow_redirects=False) as client:
        settled(client)
        assert sign_in(client, "/syndicat", "marie").headers["location"] == "/syndicat/"
        yield client, registry, settings


def sign_in(client: TestClient, area: str, name: str, **headers: str):
    form = client.get(f"{area}/connexion", headers=headers)
    data = {"name": name, "password": PASSWORD, "csrf": csrf_of(form.text)}
    return client.post(f"{area}/connexion", data=data, headers=headers)


def turn(client: TestClient, **headers: str):
    return client.post("/api/v1/turn", json={"text": PASSPORT_QUESTION}, headers=headers)


def state_of(page: str, slug: str) -> str:
    """What the communes page says this worker does with a commune (its row's data-state)."""
    row = re.search(rf'<th scope="row">{slug}</th>.*?data-state="(\w+)"', page, re.S)
    assert row, page
    return row.group(1)


def audited(settings: Settings) -> list[tuple[str, str, str]]:
    entries = syndicate_accounts(settings.staff_dir).audit_entries()
    return [(e["who"], e["action"], e["detail"]) for e in entries]


def test_a_syndicate_administrator_lists_the_communes_and_disables_one_at_once(syndicate):
    client, registry, settings = syndicate
    page = client.get("/syndicat/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    for shown in ("Valbourg-sur-Loire", "valbourg.example.fr", "+33299001234", "Montaigu-les-Prés", "marie"):
        assert shown in page.text
    assert state_of(page.text, "valbourg") == state_of(page.text, "montaigu") == "serving"
    assert ask(client, "valbourg.example.fr", PASSPORT_QUESTION)["outcome"] == "answered"
    assert client.get("/staff/connexion", headers=VALBOURG).status_code == 200

    disabled = client.post("/syndicat/communes/valbourg/desactiver", data={"csrf": csrf_of(page.text)})
    # At once, on this worker: Valbourg's residents (by host or by the widget's header) and agents are refused
    refused = [turn(client, **VALBOURG), turn(client, **{"X-Guichet-Commune": "valbourg"})]
    console = client.get("/staff/connexion", headers=VALBOURG)
    montaigu = turn(client, **MONTAIGU)
    after = client.get(disabled.headers["location"])
    assert disabled.status_code == 303 and disabled.headers["location"] == "/syndicat/?desactivee=valbourg"
    for response in (*refused, console):
        assert response.status_code == 404 and response.json() == {"error": UNKNOWN}
    assert montaigu.status_code == 200
    assert "Commune « valbourg » désactivée" in after.text and state_of(after.text, "valbourg") == "stopped"
    assert [c.enabled for c in registry.all()] == [True, False]  # montaigu, valbourg: in the registry, for every worker

    enabled = client.post("/syndicat/communes/valbourg/activer", data={"csrf": csrf_of(after.text)})
    again = client.get(enabled.headers["location"])
    assert enabled.status_code == 303 and turn(client, **VALBOURG).status_code == 200
    assert "Commune « valbourg » réactivée : elle est servie de nouveau." in again.text
    assert audited(settings)[-3:] == [
        ("marie", "connexion", ""),
        ("marie", "commune désactivée", "valbourg"),
        ("marie", "commune réactivée", "valbourg"),
    ]
    assert syndicate_accounts(settings.staff_dir).verify_audit()[1] is None


def test_the_communes_page_says_why_a_commune_is_not_served_here(folders, tmp_path):
    settings, registry = deployment(folders, tmp_path)
    registry.add("cassee", "Cassée", tmp_path / "cassee", ["cassee.example.fr"], [])  # its index since deleted
    registry.set_enabled("montaigu", False)
    with TestClient(served_app(settings, registry, tmp_path), follow_redirects=False) as client:
        settled(client)
        sign_in(client, "/syndicat", "marie")
        page = html.unescape(client.get("/syndicat/").text)
    assert [state_of(page, slug) for slug in ("cassee", "montaigu", "valbourg")] == ["failed", "absent", "serving"]
    assert "ne peut pas être servie" in page and f"No index at {tmp_path / 'cassee' / 'index'}" in page


def test_a_commune_added_in_the_browser_is_checked_as_the_command_line_checks_it(syndicate, folders, tmp_path):
    client, registry, settings = syndicate
    csrf = csrf_of(client.get("/syndicat/").text)
    write(tmp_path / "sans-index" / "town.yaml", montaigu_town())
    lavaur = {"slug": "lavaur", "name": "Lavaur", "folder": str(folders["lavaur"]), "hosts": "lavaur.example.fr"}
    before, log = registry.all(), audited(settings)
    for change, status, said in [
        ({"folder": str(tmp_path / "sans-index")}, 422, "n'a pas d'index : lancez « guichet ingest"),
        ({"folder": str(tmp_path / "nulle-part")}, 422, "n'a pas de fichier town.yaml"),
        ({"folder": "communes/lavaur"}, 422, RELATIVE_FOLDER),
        (
            {"hosts": "lavaur.example.fr\nValbourg.example.fr"},
            422,
            "valbourg.example.fr : déjà à la commune « valbourg »",
        ),
        ({"folder": str(folders["valbourg"])}, 422, "est déjà celui de la commune « valbourg »"),
        ({"slug": "Pas Bien"}, 422, "Identifiant de commune invalide : « Pas Bien »"),
        ({"numbers": "pas un numéro"}, 422, "Numéro de téléphone invalide"),
        ({"slug": "montaigu"}, 422, "La commune « montaigu » existe déjà."),
    ]:
        refused = client.post("/syndicat/communes", data=lavaur | change | {"csrf": csrf})
        assert refused.status_code == status and said in html.unescape(refused.text), (change, refused.text)
        assert f'value="{(lavaur | change)["folder"]}"' in refused.text  # the form comes back as it was typed
    unknown = client.post("/syndicat/communes/inconnue/desactiver", data={"csrf": csrf})
    assert unknown.status_code == 404 and "Aucune commune « inconnue »." in unknown.text
    assert registry.all() == before and audited(settings) == log  # nothing changed, nothing recorded

    added = client.post("/syndicat/communes", data=lavaur | {"numbers": "05 63 00 11 22", "csrf": csrf})
    page = client.get(added.headers["location"])
    assert added.status_code == 303
    assert "Commune « lavaur » enregistrée : elle sera servie au prochain redémarrage de guichet serve." in page.text
    assert state_of(page.text, "lavaur") == "absent"  # registered for the next start, not loaded by this one
    assert turn(client, host="lavaur.example.fr").status_code == 404
    commune = next(c for c in registry.all() if c.slug == "lavaur")
    assert (commune.name, commune.hosts, commune.numbers) == ("Lavaur", ("lavaur.example.fr",), ("+33563001122",))
    assert audited(settings)[-1] == (
        "marie",
        "commune ajoutée",
        f"lavaur ({folders['lavaur']}; lavaur.example.fr, +33563001122)",
    )


def test_every_syndicate_form_needs_its_csrf_token(syndicate):
    client, registry, settings = syndicate
    lavaur = {"slug": "lavaur", "folder": "/srv/lavaur"}
    before, log = registry.all(), audited(settings)
    for path, data in [
        ("/syndicat/communes/valbourg/desactiver", {}),
        ("/syndicat/communes/valbourg/desactiver", {"csrf": "x" * 64}),
        ("/syndicat/communes/montaigu/activer", {"csrf": ""}),
        ("/syndicat/communes", lavaur),
    ]:
        response = client.post(path, data=data)
        assert response.status_code == 403 and EXPIRED_FORM in response.text, path
    kept = client.cookies.get("guichet_syndicat")
    client.post("/syndicat/deconnexion", data={"csrf": "faux"})  # the browser forgets its cookie...
    client.cookies.set("guichet_syndicat", kept, path="/syndicat")
    assert client.get("/syndicat/").status_code == 200  # ...but the session was not ended by a forged form
    assert registry.all() == before and audited(settings) == log
    assert turn(client, **VALBOURG).status_code == 200
    client.cookies.clear()
    form = client.get("/syndicat/connexion")
    forged = client.post("/syndicat/connexion", data={"name": "marie", "password": PASSWORD, "csrf": "x"})
    assert form.status_code == 200 and forged.status_code == 403 and EXPIRED_FORM in forged.text


def test_a_communes_administrator_opens_no_syndicate_page_and_changes_no_commune(syndicate):
    client, registry, settings = syndicate
    client.cookies.clear()
    assert sign_in(client, "/staff", "claire", **VALBOURG).status_code == 303
    assert client.get("/staff/", headers=VALBOURG).status_code == 200
    staff_csrf = csrf_of(client.get("/staff/", headers=VALBOURG).text)
    # Her console's cookie is for /staff; presented to the syndicate's pages as theirs, it opens nothing either
    pages = [client.get("/syndicat/")]
    client.cookies.set("guichet_syndicat", client.cookies.get("guichet_staff"), path="/syndicat")
    pages.append(client.get("/syndicat/"))
    acts = [
        client.post("/syndicat/communes/valbourg/desactiver", data={"csrf": staff_csrf}),
        client.post("/syndicat/communes", data={"slug": "lavaur", "folder": "/srv/lavaur", "csrf": staff_csrf}),
    ]
    for refused in (*pages, *acts):
        assert refused.status_code == 303 and refused.headers["location"] == "/syndicat/connexion"
    # ...and her name and password are no syndicate account's
    client.cookies.clear()
    wrong_door = sign_in(client, "/syndicat", "claire")
    assert wrong_door.status_code == 401 and BAD_LOGIN in wrong_door.text
    assert [c.enabled for c in registry.all()] == [True, True] and turn(client, **VALBOURG).status_code == 200
    assert audited(settings)[-1] == ("claire", "connexion refusée", "")


def test_a_syndicate_session_is_no_communes_console_session(syndicate):
    client, _, _ = syndicate
    assert client.get("/staff/", headers=VALBOURG).headers["location"] == "/staff/connexion"
    client.cookies.set("guichet_staff", client.cookies.get("guichet_syndicat"), path="/staff")
    assert client.get("/staff/", headers=VALBOURG).headers["location"] == "/staff/connexion"
    client.cookies.clear()
    assert sign_in(client, "/staff", "marie", **VALBOURG).status_code == 401


def test_with_one_commune_both_kinds_of_account_share_its_database_but_not_a_door(fake_demo_index, tmp_path):
    """Without registered communes, the deployment's database is the commune's: the role alone keeps the doors."""
    staff_dir = tmp_path / "staff"
    syndicate_accounts(staff_dir).add("marie", "syndicate", PASSWORD)
    settings = Settings(staff_dir=staff_dir)
    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    with TestClient(create_app(lambda: answerer, settings), follow_redirects=False) as client:
        settled(client)
        console_off = client.get("/staff/connexion").status_code  # a syndicate account opens no console
        AccountStore(staff_dir).add("claire", "admin", PASSWORD)
        refused = [sign_in(client, "/staff", "marie").status_code, sign_in(client, "/syndicat", "claire").status_code]
        assert sign_in(client, "/staff", "claire").status_code == sign_in(client, "/syndicat", "marie").status_code
        page = client.get("/syndicat/")
        swapped = {"guichet_staff": client.cookies.get("guichet_syndicat", path="/syndicat")}
        swapped["guichet_syndicat"] = client.cookies.get("guichet_staff", path="/staff")
        client.cookies.clear()
        client.cookies.set("guichet_staff", swapped["guichet_staff"], path="/staff")
        client.cookies.set("guichet_syndicat", swapped["guichet_syndicat"], path="/syndicat")
        crossed = [client.get("/staff/").headers.get("location"), client.get("/syndicat/").headers.get("location")]
    assert console_off == 404 and refused == [401, 401]
    assert page.status_code == 200 and "Ce processus sert la commune de ses réglages" in page.text
    assert crossed == ["/staff/connexion", "/syndicat/connexion"]  # one signing key, yet each cookie opens its own


def test_every_worker_follows_the_registry_within_seconds(folders, tmp_path, monkeypatch):
    """Two workers of one deployment: a commune disabled through one, then enabled from the command line, is refused
    then served again by the other without a restart."""
    from guichet.cli import app as cli

    monkeypatch.setattr(communes_module, "REGISTRY_CHECK_SECONDS", 0.0)
    monkeypatch.setenv("GUICHET_STAFF_DIR", str(tmp_path / "deployment"))
    monkeypatch.delenv("GUICHET_DATABASE_URL", raising=False)
    settings, registry = deployment(folders, tmp_path)
    first, second = (TestClient(served_app(settings, registry, tmp_path), follow_redirects=False) for _ in range(2))
    with first, second:
        settled(first)
        settled(second)
        sign_in(first, "/syndicat", "marie")
        first.post("/syndicat/communes/valbourg/desactiver", data={"csrf": csrf_of(first.get("/syndicat/").text)})
        refused_by_the_other = until(lambda: turn(second, **VALBOURG).status_code == 404)
        enabled = CliRunner().invoke(cli, ["commune", "enable", "valbourg"])
        served_again = until(lambda: turn(second, **VALBOURG).status_code == 200)
        montaigu_all_along = turn(second, **MONTAIGU).status_code
    assert refused_by_the_other and enabled.exit_code == 0 and served_again and montaigu_all_along == 200
    assert audited(settings)[-2:] == [
        ("marie", "commune désactivée", "valbourg"),
        ("cli", "commune réactivée", "valbourg"),
    ]


def until(condition, seconds: float = 10.0) -> bool:
    """True once ``condition()`` holds (checked every 50 ms), False if it still does not after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_command_line_makes_syndicate_accounts_in_the_deployments_database(folders, tmp_path, monkeypatch):
    from guichet.cli import app

    monkeypatch.setenv("GUICHET_STAFF_DIR", str(tmp_path / "deployment"))
    monkeypatch.delenv("GUICHET_DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["commune", "add", "valbourg", "--folder", str(folders["valbourg"])]).exit_code == 0
    created = runner.invoke(app, ["staff", "add", "paul", "--syndicate"], input=PASSWORD + "\n")
    with_commune = runner.invoke(app, ["staff", "add", "paul2", "--syndicate", "--commune", "valbourg"], input="x\n")
    with_role = runner.invoke(app, ["staff", "add", "paul3", "--syndicate", "--role", "admin"], input="x\n")
    neither = runner.invoke(app, ["staff", "add", "paul4"], input=PASSWORD + "\n")
    listed = runner.invoke(app, ["staff", "list", "--syndicate"])
    disabled = runner.invoke(app, ["commune", "disable", "valbourg"])
    verified = runner.invoke(app, ["staff", "audit", "--syndicate", "--verify"])
    assert created.exit_code == 0 and "/syndicat/connexion" in created.output
    assert with_commune.exit_code != 0 and "--syndicate ou --commune" in with_commune.output
    assert with_role.exit_code != 0 and "--role ne s'applique pas" in with_role.output
    assert neither.exit_code != 0 and "ou --syndicate pour un compte de l'administration du syndicat" in neither.output
    assert listed.exit_code == 0 and "paul" in listed.output
    deployment_store = syndicate_accounts(tmp_path / "deployment")
    assert {n: a.role for n, a in deployment_store.load().items()} == {"paul": "syndicate"}
    assert "paul" not in AccountStore(folders["valbourg"] / "staff").load()  # in no commune's database
    assert disabled.exit_code == 0 and verified.exit_code == 0 and "Journal intact" in verified.output
    actions = [(e["who"], e["action"], e["detail"]) for e in deployment_store.audit_entries()]
    assert actions[-3:] == [
        ("cli", "commune ajoutée", f"valbourg ({folders['valbourg']}; sans hôte)"),
        ("cli", "compte créé", "paul (syndicate)"),
        ("cli", "commune désactivée", "valbourg"),
    ]
