"""Several communes in one service (#34), through HTTP: each resident gets their commune's documents and contacts,
each agent their commune's console only, each caller the commune whose number they dialled. Fake models; the real
ones shared by two communes are in tests/e2e/test_communes_e2e.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.engines.embedder import FakeEmbedder
from bot.engines.index import Index
from bot.phone.jambonz import sign
from bot.settings import REPO_ROOT, Settings
from bot.state.communes import Commune, CommuneRegistry
from bot.web.app import create_app
from bot.web.communes import Communes
from bot.web.staff.accounts import AccountStore
from ingestion.builder import build
from tests.conftest import DEMO, fake_answerer, write
from tests.unit.test_api import settled

VALBOURG_PHONE, MONTAIGU_PHONE = "01 99 00 12 34", "02 88 00 55 66"
PASSWORD = "un-mot-de-passe-assez-long"
SECRET = "secret-de-la-passerelle"
POOL_PAGE = (
    "# Piscine municipale de Montaigu\n\n## Tarifs\n\nL'entrée à la piscine municipale coûte 3 € pour un adulte.\n"
)


def montaigu_town() -> str:
    """Another town's file: the demo's, with its own name and contacts."""
    text = (REPO_ROOT / "config" / "town.yaml").read_text(encoding="utf-8")
    text = text.replace("Valbourg-sur-Loire", "Montaigu-les-Prés").replace("valbourg-sur-loire", "montaigu-les-pres")
    return re.sub(r"01 99 00 \d\d \d\d", MONTAIGU_PHONE, text)


def commune_folders(root: Path) -> dict[str, Path]:
    """Two communes' folders: Valbourg with the demo corpus, Montaigu with its swimming pool's page only."""
    valbourg, montaigu = root / "valbourg", root / "montaigu"
    write(valbourg / "town.yaml", (REPO_ROOT / "config" / "town.yaml").read_text(encoding="utf-8"))
    build([DEMO], valbourg / "index", FakeEmbedder())
    write(montaigu / "town.yaml", montaigu_town())
    write(montaigu / "corpus" / "piscine.md", POOL_PAGE)
    build([montaigu / "corpus"], montaigu / "index", FakeEmbedder())
    return {"valbourg": valbourg, "montaigu": montaigu}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    return commune_folders(tmp_path_factory.mktemp("communes"))


REPLIES = {
    "valbourg": json.dumps({"source": "S1", "reponse": "Le passeport d'un majeur coûte 86 €."}),
    "montaigu": json.dumps({"source": "S1", "reponse": "L'entrée à la piscine coûte 3 €."}),
}


def communes_app(folders: dict[str, Path], tmp_path: Path, disabled: tuple[str, ...] = ()):
    """The app serving both communes, each with the fake models over its own index and town file."""
    listed = [
        Commune("valbourg", "Valbourg-sur-Loire", folders["valbourg"], ("valbourg.example.fr",), ("+33299001234",)),
        Commune("montaigu", "Montaigu-les-Prés", folders["montaigu"], ("montaigu.example.fr",), ("+33288005566",)),
    ]
    listed = [Commune(**{**c.__dict__, "enabled": c.slug not in disabled}) for c in listed]
    settings = Settings(feedback_dir=tmp_path / "feedback", voice_webhook_secret=SECRET)
    communes = Communes.build(listed, settings, load_answerer=fake_models(tmp_path))
    return create_app(None, settings, communes=communes), communes


def fake_models(tmp_path: Path):
    """How each commune's answerer is loaded in these tests: the fake models over its own index and town file."""

    def load(own: Settings):
        slug = own.index_dir.parent.name
        overrides = {"town_file": own.town_file, "staff_dir": own.staff_dir, "voice_webhook_secret": SECRET}
        return fake_answerer(Index.open(own.index_dir), REPLIES[slug], tmp_path / slug, **overrides)

    return load


def ask(client: TestClient, host: str, text: str, **headers: str) -> dict:
    response = client.post("/api/v1/turn", json={"text": text}, headers={"host": host, **headers})
    assert response.status_code == 200, response.text
    return response.json()


def test_each_resident_gets_their_communes_documents_and_contacts(folders, tmp_path):
    app, _ = communes_app(folders, tmp_path)
    with TestClient(app) as client:
        assert settled(client).json()["status"] == "ready"
        passport = ask(client, "valbourg.example.fr", "prix du passeport majeur")
        pool = ask(client, "montaigu.example.fr", "tarif entrée piscine municipale adulte")
        pool_asked_in_valbourg = ask(client, "valbourg.example.fr", "tarif entrée piscine municipale adulte")
        passport_asked_in_montaigu = ask(client, "montaigu.example.fr", "prix du passeport majeur")
    assert passport["outcome"] == "answered" and passport["citations"][0]["source"] == "carte-identite-passeport.html"
    assert pool["outcome"] == "answered" and pool["citations"][0]["source"] == "piscine.md"
    # Neither commune's documents nor contacts reach the other's residents.
    assert "piscine.md" not in json.dumps(pool_asked_in_valbourg) and MONTAIGU_PHONE not in json.dumps(
        pool_asked_in_valbourg
    )
    assert (
        pool_asked_in_valbourg["outcome"] == "unanswerable_no_sources"
        and VALBOURG_PHONE in pool_asked_in_valbourg["answer"]
    )
    assert "carte-identite-passeport" not in json.dumps(passport_asked_in_montaigu)
    assert VALBOURG_PHONE not in json.dumps(passport_asked_in_montaigu)
    assert MONTAIGU_PHONE in passport_asked_in_montaigu["answer"]


def test_the_widgets_commune_is_its_header_and_a_request_for_no_commune_is_refused(folders, tmp_path):
    app, _ = communes_app(folders, tmp_path, disabled=("montaigu",))
    with TestClient(app) as client:
        settled(client)
        by_header = client.post(
            "/api/v1/turn",
            json={"text": "prix du passeport majeur"},
            headers={"host": "assistant.syndicat.example.fr", "X-Guichet-Commune": "valbourg"},
        )
        config = client.get("/api/v1/widget/config", headers={"X-Guichet-Commune": "valbourg"})
        unknown_host = client.post("/api/v1/turn", json={"text": "bonjour"}, headers={"host": "ailleurs.example.fr"})
        disabled = client.post("/api/v1/turn", json={"text": "piscine"}, headers={"host": "montaigu.example.fr"})
        disabled_by_header = client.post(
            "/api/v1/turn", json={"text": "piscine"}, headers={"X-Guichet-Commune": "montaigu"}
        )
        unknown_by_header = client.post("/api/v1/turn", json={"text": "piscine"}, headers={"X-Guichet-Commune": "x"})
    assert by_header.status_code == 200 and by_header.json()["outcome"] == "answered"
    assert config.status_code == 200 and "Valbourg" in json.dumps(config.json(), ensure_ascii=False)
    for refused in (unknown_host, disabled, disabled_by_header, unknown_by_header):
        assert refused.status_code == 404
        assert refused.json()["error"] == "Cette adresse ne correspond à aucune commune servie par cet assistant."


def log_in(client: TestClient, host: str, name: str) -> int:
    form = client.get("/staff/connexion", headers={"host": host})
    csrf = re.search(r'name="csrf" value="([^"]*)"', form.text).group(1)
    data = {"name": name, "password": PASSWORD, "csrf": csrf}
    return client.post("/staff/connexion", data=data, headers={"host": host}).status_code


def test_an_agent_works_on_their_commune_only(folders, tmp_path):
    AccountStore(folders["valbourg"] / "staff").add("claire", "admin", PASSWORD)
    AccountStore(folders["montaigu"] / "staff").add("marc", "admin", PASSWORD)
    app, _ = communes_app(folders, tmp_path)
    valbourg, montaigu = {"host": "valbourg.example.fr"}, {"host": "montaigu.example.fr"}
    with TestClient(app, follow_redirects=False) as client:  # one browser: its cookies go to both hosts
        settled(client)
        assert log_in(client, "valbourg.example.fr", "claire") == 303
        home = client.get("/staff/", headers=valbourg)
        # Valbourg's agent, signed in: their session is no session in Montaigu's console...
        feedback_elsewhere = client.get("/staff/avis", headers=montaigu)
        approve_elsewhere = client.post("/staff/approuver", data={"approval": "x", "csrf": "x"}, headers=montaigu)
        # ...and their name and password open nothing there.
        claire_in_montaigu = log_in(client, "montaigu.example.fr", "claire")
        assert log_in(client, "montaigu.example.fr", "marc") == 303
        own = client.get("/staff/", headers=montaigu)
    assert home.status_code == 200 and "Valbourg-sur-Loire" in home.text and "Montaigu" not in home.text
    for refused in (feedback_elsewhere, approve_elsewhere):
        assert refused.status_code == 303 and refused.headers["location"] == "/staff/connexion"
    assert claire_in_montaigu == 401
    assert own.status_code == 200 and "Montaigu-les-Prés" in own.text and "Valbourg" not in own.text


def test_a_caller_reaches_the_commune_whose_number_they_dialled(folders, tmp_path):
    app, communes = communes_app(folders, tmp_path)
    with TestClient(app) as client:
        settled(client)
        replies = {}
        for number in ("02 99 00 12 34", "33288005566"):  # as gateways pass them: national, or without the +
            body = json.dumps({"call_sid": f"call-{number}", "to": number}).encode()
            headers = {"Jambonz-Signature": sign(body, SECRET), "Content-Type": "application/json"}
            replies[number] = client.post("/voice/jambonz/call", content=body, headers=headers)
    said = {number: json.dumps(r.json(), ensure_ascii=False) for number, r in replies.items()}
    assert "Valbourg" in said["02 99 00 12 34"] and "Montaigu" not in said["02 99 00 12 34"]
    assert "Montaigu" in said["33288005566"] and "Valbourg" not in said["33288005566"]
    # One server: the communes share its gate, limits and metrics.
    first, second = communes.all()
    assert first.gate is second.gate and first.metrics is second.metrics and first.limiter is second.limiter


def test_the_command_line_registers_lists_and_disables_communes(folders, tmp_path, monkeypatch):
    from guichet.cli import app

    monkeypatch.setenv("GUICHET_STAFF_DIR", str(tmp_path / "deployment"))
    monkeypatch.delenv("GUICHET_DATABASE_URL", raising=False)
    runner = CliRunner()
    added = runner.invoke(
        app, ["commune", "add", "valbourg", "--folder", str(folders["valbourg"]), "--host", "Valbourg.example.fr"]
    )
    twice = runner.invoke(
        app, ["commune", "add", "autre", "--folder", str(folders["montaigu"]), "--host", "valbourg.example.fr"]
    )
    no_index = runner.invoke(app, ["commune", "add", "vide", "--folder", str(tmp_path)])
    bad_slug = runner.invoke(app, ["commune", "add", "Pas Bien", "--folder", str(folders["montaigu"])])
    same_folder = runner.invoke(app, ["commune", "add", "autre", "--folder", str(folders["valbourg"])])
    deployment_account = runner.invoke(app, ["staff", "add", "claire"], input=PASSWORD + "\n")
    commune_account = runner.invoke(app, ["staff", "add", "julie", "--commune", "valbourg"], input=PASSWORD + "\n")
    disabled = runner.invoke(app, ["commune", "disable", "valbourg"])
    unknown = runner.invoke(app, ["commune", "disable", "inconnue"])
    listed = runner.invoke(app, ["commune", "list"])
    assert added.exit_code == 0, added.output
    assert twice.exit_code != 0 and "déjà à la commune « valbourg »" in twice.output
    assert no_index.exit_code != 0 and "town.yaml" in no_index.output
    assert bad_slug.exit_code != 0 and "Identifiant de commune invalide" in bad_slug.output
    assert same_folder.exit_code != 0 and "déjà celui de la commune « valbourg »" in same_folder.output
    assert deployment_account.exit_code != 0 and "précisez --commune (valbourg)" in deployment_account.output
    assert commune_account.exit_code == 0, commune_account.output
    assert "julie" in AccountStore(folders["valbourg"] / "staff").load()
    assert disabled.exit_code == 0 and unknown.exit_code != 0 and "Aucune commune" in unknown.output
    assert "valbourg" in listed.output and "non" in listed.output  # (rich cuts long cells to the terminal)
    registry = CommuneRegistry(f"sqlite:///{tmp_path / 'deployment' / 'guichet.db'}")
    assert [(c.slug, c.enabled, c.hosts) for c in registry.all()] == [("valbourg", False, ("valbourg.example.fr",))]


def test_a_commune_that_cannot_load_does_not_stop_the_others(folders, tmp_path):
    from bot.errors import IndexError_

    listed = [
        Commune("valbourg", "Valbourg-sur-Loire", folders["valbourg"], ("valbourg.example.fr",), ()),
        Commune("cassee", "Cassée", tmp_path / "cassee", ("cassee.example.fr",), ()),
    ]

    def load(own: Settings):
        if own.index_dir.parent.name == "cassee":
            raise IndexError_(f"No index at {own.index_dir} — run 'guichet ingest' first.")
        return fake_answerer(Index.open(own.index_dir), REPLIES["valbourg"], tmp_path / "v", town_file=own.town_file)

    settings = Settings(feedback_dir=tmp_path / "feedback")
    with TestClient(
        create_app(None, settings, communes=Communes.build(listed, settings, load_answerer=load))
    ) as client:
        ready = settled(client)
        served = client.post(
            "/api/v1/turn", json={"text": "prix du passeport majeur"}, headers={"host": "valbourg.example.fr"}
        )
        broken = client.post("/api/v1/turn", json={"text": "bonjour"}, headers={"host": "cassee.example.fr"})
    assert ready.status_code == 200 and list(ready.json()["communes"]) == ["valbourg"]
    assert "guichet ingest" in ready.json()["not_serving"]["cassee"]
    assert served.status_code == 200 and served.json()["outcome"] == "answered"
    assert broken.status_code == 503 and "momentanément indisponible" in broken.json()["error"]


def test_a_communes_files_from_before_the_database_stop_serve_until_migrated_into_its_own(tmp_path, monkeypatch):
    import datetime as dt
    import shutil

    from bot.state.database import state_url
    from bot.web.feedback import FeedbackStore
    from guichet.cli import app
    from tests.unit.test_state import FEEDBACK_FILES

    monkeypatch.setenv("GUICHET_STAFF_DIR", str(tmp_path / "deployment"))
    monkeypatch.setenv("GUICHET_FEEDBACK_RETENTION_DAYS", "36500")  # the fixture's votes are kept whatever the date
    monkeypatch.delenv("GUICHET_DATABASE_URL", raising=False)
    folder = tmp_path / "montaigu"
    write(folder / "town.yaml", montaigu_town())
    write(folder / "corpus" / "piscine.md", POOL_PAGE)
    build([folder / "corpus"], folder / "index", FakeEmbedder())
    runner = CliRunner()
    assert runner.invoke(app, ["commune", "add", "montaigu", "--folder", str(folder)]).exit_code == 0
    shutil.copytree(FEEDBACK_FILES, folder / "feedback")
    refused = runner.invoke(app, ["serve", "--port", "1"])
    assert refused.exit_code == 2 and "guichet staff migrate --commune montaigu" in refused.output
    assert str(folder / "feedback") in refused.output
    migrated = runner.invoke(app, ["staff", "migrate", "--commune", "montaigu"])
    assert migrated.exit_code == 0 and "5 avis" in migrated.output, migrated.output
    assert list((folder / "feedback").iterdir()) == []
    kept = FeedbackStore(state_url("", folder / "staff"), 36500).records(dt.date.min)  # the commune's database
    assert len(kept) == 5 and kept[2]["question"] == "horaires du marché le dimanche"
    assert FeedbackStore(state_url("", tmp_path / "deployment"), 36500).records(dt.date.min) == []
    unknown = runner.invoke(app, ["staff", "migrate", "--commune", "inconnue"])
    assert unknown.exit_code == 2 and "Aucune commune « inconnue »" in unknown.output
