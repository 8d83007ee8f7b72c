"""``guichet commune add/list/disable/enable``: the communes one deployment serves (issue #34).

A commune is a folder (its ``town.yaml``, its ``index/`` built by ``guichet ingest``, its ``staff/`` and
``feedback/``) and the host names and phone numbers that lead to it. Once one is registered, ``guichet serve``
answers for the registered communes only, each from its own folder. Every change is checked and audited as the
syndicate's pages do it (``bot.web.staff.syndicate.CommuneAdministration``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.errors import GuichetError
from bot.settings import load_settings
from guichet.common import fail as _fail
from guichet.common import out


def registry():
    """The communes in the deployment's database."""
    from bot.state.communes import CommuneRegistry
    from bot.state.database import state_url

    settings = load_settings()
    return CommuneRegistry(state_url(settings.database_url, settings.staff_dir))


def folder_of(slug: str) -> Path:
    """The folder of a registered commune, or a French error naming the registered ones."""
    found = {c.slug: c for c in registry().all()}
    if slug not in found:
        known = ", ".join(found) or "aucune"
        raise GuichetError(f"Aucune commune « {slug} » (communes enregistrées : {known}).")
    return found[slug].folder


def settings_of(folder: Path):
    """The settings a commune in ``folder`` is served with (``bot.web.communes.commune_settings``: where its town
    file, index and staff are)."""
    from bot.web.communes import commune_settings

    return commune_settings(load_settings(), folder)


def administration():
    """The deployment's communes, changed as the syndicate's pages change them (checked, then audited)."""
    from bot.web.staff.syndicate import CommuneAdministration

    return CommuneAdministration(load_settings())


def register(app: typer.Typer) -> None:
    commune_app = typer.Typer(no_args_is_help=True, help="Les communes servies par ce déploiement.")
    app.add_typer(commune_app, name="commune")

    @commune_app.command("add")
    def add(
        slug: Annotated[str, typer.Argument(help="Identifiant (minuscules, chiffres, tirets), celui du widget.")],
        folder: Annotated[Path, typer.Option(help="Son dossier : town.yaml et index/ (guichet ingest).")],
        name: Annotated[str, typer.Option(help="Son nom, tel que le personnel le lit.")] = "",
        host: Annotated[list[str], typer.Option("--host", help="Nom d'hôte qui mène à elle (répétable).")] = [],  # noqa: B006
        number: Annotated[list[str], typer.Option("--number", help="Numéro appelé (répétable).")] = [],  # noqa: B006
    ):
        """Enregistrer une commune ; guichet serve la sert au prochain démarrage."""
        try:
            commune = administration().add(slug, name, folder, host, number, by="cli")
        except GuichetError as exc:
            _fail(exc)
        out.print(f"Commune « {commune.slug} » enregistrée ({commune.folder}) : servie au prochain démarrage.")

    @commune_app.command("list")
    def list_():
        """Les communes : identifiant, nom, dossier, hôtes, numéros, active."""
        table = Table("identifiant", "nom", "dossier", "hôtes", "numéros", "active")
        for c in registry().all():
            table.add_row(
                c.slug, c.name, str(c.folder), ", ".join(c.hosts), ", ".join(c.numbers), "oui" if c.enabled else "non"
            )
        out.print(table)

    def set_enabled(slug: str, enabled: bool, said: str) -> None:
        try:
            administration().set_enabled(slug, enabled, by="cli")
        except GuichetError as exc:
            _fail(exc)
        out.print(f"Commune « {slug} » {said}")

    @commune_app.command("disable")
    def disable(slug: Annotated[str, typer.Argument(help="Identifiant de la commune.")]):
        """Ne plus servir une commune (sous quelques secondes, serveurs en marche compris) ; son dossier est gardé."""
        set_enabled(slug, False, "désactivée : les serveurs en marche cessent de la servir sous quelques secondes.")

    @commune_app.command("enable")
    def enable(slug: Annotated[str, typer.Argument(help="Identifiant de la commune.")]):
        """Servir de nouveau une commune désactivée."""
        set_enabled(
            slug,
            True,
            "réactivée : servie de nouveau sous quelques secondes par les serveurs qui l'ont chargée à leur démarrage, "
            "sinon au prochain démarrage de guichet serve.",
        )
