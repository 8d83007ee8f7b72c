"""The communes one deployment serves: each with its folder (town file, index, staff and feedback), the host names
its residents and agents reach it by, and the numbers its callers dial.

A deployment with no commune registered serves the one commune its settings name, as before. Registered communes
are kept in the deployment's database (``GUICHET_DATABASE_URL``, or SQLite in the staff folder), so every worker
and every machine reads the same list.

>>> Commune.check_slug("valbourg")
'valbourg'
>>> normal_host("Mairie.Valbourg.fr:8443")
'mairie.valbourg.fr'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, update

from bot.errors import GuichetError
from bot.state.database import Database
from bot.state.tables import communes

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
NUMBER = re.compile(r"\+?[0-9]{4,15}")


class CommuneError(GuichetError):
    """A commune that cannot be added or changed: the message says why, in French."""


def normal_host(host: str) -> str:
    """A host name as requests carry it, without port and case."""
    return host.strip().lower().rsplit(":", 1)[0] if host.count(":") == 1 else host.strip().lower()


def normal_number(number: str) -> str:
    """A phone number in international form, as gateways pass the number dialled: spaces, dots, dashes taken
    out, a French national number (0…, 0033…, 33…) written +33….

    >>> [normal_number(n) for n in ("02 99 00 12 34", "0033299001234", "33299001234", "+33 2 99 00 12 34")]
    ['+33299001234', '+33299001234', '+33299001234', '+33299001234']
    """
    digits = re.sub(r"[\s.\-()]", "", number)
    if digits.startswith("00"):
        return "+" + digits[2:]
    if re.fullmatch(r"0[1-9][0-9]{8}", digits):
        return "+33" + digits[1:]
    if re.fullmatch(r"33[1-9][0-9]{8}", digits):
        return "+" + digits
    return digits


@dataclass(frozen=True)
class Commune:
    """One commune of the deployment."""

    slug: str
    name: str
    folder: Path
    hosts: tuple[str, ...]
    numbers: tuple[str, ...]
    enabled: bool = True

    @staticmethod
    def check_slug(slug: str) -> str:
        if not SLUG.fullmatch(slug):
            raise CommuneError(
                f"Identifiant de commune invalide : « {slug} » (2 à 40 caractères : minuscules, chiffres, tirets)."
            )
        return slug


class CommuneRegistry:
    """The deployment's communes, in its database."""

    def __init__(self, database_url: str):
        self.db = Database.open(database_url)

    def all(self) -> list[Commune]:
        with self.db.transaction() as connection:
            rows = connection.execute(select(communes).order_by(communes.c.slug)).mappings().all()
        return [
            Commune(
                r["slug"],
                r["name"],
                Path(r["folder"]),
                tuple(json.loads(r["hosts"])),
                tuple(json.loads(r["numbers"])),
                bool(r["enabled"]),
            )
            for r in rows
        ]

    def enabled(self) -> list[Commune]:
        return [c for c in self.all() if c.enabled]

    def add(self, slug: str, name: str, folder: Path, hosts: list[str], numbers: list[str]) -> Commune:
        """Register a commune; its host names and numbers must be no other commune's (its folder is checked by the
        command that calls this: the town file and an index)."""
        commune = Commune(
            Commune.check_slug(slug),
            name.strip() or slug,
            folder.resolve(),
            tuple(dict.fromkeys(normal_host(h) for h in hosts)),
            tuple(dict.fromkeys(normal_number(n) for n in numbers)),
        )
        for host in commune.hosts:
            if not HOST.fullmatch(host):
                raise CommuneError(f"Nom d'hôte invalide : « {host} ».")
        for number in commune.numbers:
            if not NUMBER.fullmatch(number):
                raise CommuneError(f"Numéro de téléphone invalide : « {number} » (chiffres, + au début).")
        with self.db.transaction() as connection:
            existing = connection.execute(select(communes)).mappings().all()
            for row in existing:
                if row["slug"] == commune.slug:
                    raise CommuneError(f"La commune « {slug} » existe déjà.")
                if Path(row["folder"]) == commune.folder:  # its staff, feedback and answers would be both's
                    raise CommuneError(f"Le dossier {commune.folder} est déjà celui de la commune « {row['slug']} ».")
                taken = (set(json.loads(row["hosts"])) & set(commune.hosts)) | (
                    set(json.loads(row["numbers"])) & set(commune.numbers)
                )
                if taken:
                    raise CommuneError(f"{', '.join(sorted(taken))} : déjà à la commune « {row['slug']} ».")
            connection.execute(
                insert(communes).values(
                    slug=commune.slug,
                    name=commune.name,
                    folder=str(commune.folder),
                    hosts=json.dumps(list(commune.hosts)),
                    numbers=json.dumps(list(commune.numbers)),
                    enabled=True,
                    added=datetime.now(UTC).isoformat(timespec="seconds"),
                )
            )
        return commune

    def set_enabled(self, slug: str, enabled: bool) -> None:
        with self.db.transaction() as connection:
            changed = connection.execute(update(communes).where(communes.c.slug == slug).values(enabled=enabled))
            if not changed.rowcount:
                raise CommuneError(f"Aucune commune « {slug} ».")
