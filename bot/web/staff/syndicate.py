"""The syndicate's administration of its communes: its accounts, and every change to the communes it serves.

A syndicate administrator's account is in the deployment's database, where the communes' registry is
(``GUICHET_DATABASE_URL``, or the SQLite file of ``GUICHET_STAFF_DIR``), never in a commune's: it opens the
syndicate's pages, no commune's console, and no commune agent's account opens its pages. A change made from the
command line or the syndicate's pages goes through ``CommuneAdministration``: the registry's rules and the folder's
check, each written once, then a row in the deployment's audit log.

>>> administration = CommuneAdministration(settings)  # doctest: +SKIP
>>> administration.set_enabled("valbourg", False, by="marie")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from bot.settings import Settings
from bot.state.communes import Commune, CommuneRegistry
from bot.state.database import state_url
from bot.web.communes import check_folder
from bot.web.staff.accounts import SYNDICATE_ROLES, AccountStore


def syndicate_accounts(staff_dir: Path, database_url: str = "") -> AccountStore:
    """The syndicate's accounts, sessions and the deployment's audit log (``database_url``, or SQLite in
    ``staff_dir``)."""
    return AccountStore(staff_dir, database_url, SYNDICATE_ROLES)


class CommuneAdministration:
    """The deployment's communes as its administrators change them: checked, registered, audited."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.registry = CommuneRegistry(state_url(settings.database_url, settings.staff_dir))
        self.accounts = syndicate_accounts(settings.staff_dir, settings.database_url)

    def add(self, slug: str, name: str, folder: Path, hosts: list[str], numbers: list[str], by: str) -> Commune:
        """Register a commune whose folder has what serving it needs; ``CommuneError`` (French) and nothing
        changed otherwise. ``guichet serve`` serves it from its next start."""
        check_folder(self.settings, folder.resolve())
        commune = self.registry.add(slug, name, folder, hosts, numbers)
        detail = f"{commune.slug} ({commune.folder}; {', '.join(commune.hosts + commune.numbers) or 'sans hôte'})"
        self.accounts.audit(by, "commune ajoutée", detail)
        return commune

    def set_enabled(self, slug: str, enabled: bool, by: str) -> None:
        """Enable or disable a commune in the registry (``CommuneError`` if there is none of that name)."""
        self.registry.set_enabled(slug, enabled)
        self.accounts.audit(by, "commune réactivée" if enabled else "commune désactivée", slug)
