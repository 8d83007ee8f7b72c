"""The service's state tables (SQLAlchemy Core): what the migrations in ``bot/state/migrations`` create.

Staff accounts, their server-side sessions, login throttling shared by every worker, and the append-only audit log
whose rows are chained by hash; the communes a deployment serves. No resident data is kept here.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Integer, MetaData, String, Table, Text

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created", String(32), nullable=False),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 of the cookie's token: a stolen table opens nothing
    Column("account", String(32), ForeignKey("accounts.name", ondelete="CASCADE"), nullable=False, index=True),
    Column("created", Float, nullable=False),  # epoch seconds: the absolute lifetime runs from here
    Column("seen", Float, nullable=False),  # the last request: the idle lifetime runs from here
)

login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(200), primary_key=True),  # "name:<account>" or "client:<address>"
    Column("tokens", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(32), nullable=False),
    Column("who", String(64), nullable=False),
    Column("action", String(100), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("previous", String(64), nullable=False, unique=True),  # one row follows each: the chain cannot fork
    Column("hash", String(64), nullable=False),
)

communes = Table(
    "communes",
    metadata,
    Column("slug", String(40), primary_key=True),  # the widget's data-commune, the console's name for it
    Column("name", String(120), nullable=False),
    Column("folder", Text, nullable=False),  # its town file, index, staff and feedback folders
    Column("hosts", Text, nullable=False),  # JSON list of host names its residents and staff reach it by
    Column("numbers", Text, nullable=False),  # JSON list of the phone numbers callers dial (E.164)
    Column("enabled", Boolean, nullable=False, default=True),
    Column("added", String(32), nullable=False),
)
