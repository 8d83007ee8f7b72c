"""The service's state tables (SQLAlchemy Core): what the migrations in ``bot/state/migrations`` create.

Staff accounts, their server-side sessions, login throttling shared by every worker, and the append-only audit log
whose rows are chained by hash; the communes a deployment serves; residents' feedback (no personal data: a day, never
a time, and no session), the console's question sets and its runs with their scored results.
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

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", String(10), nullable=False, index=True),  # ISO date, never a time of day; the retention reads it
    Column("useful", Boolean, nullable=False),
    Column("reason", String(32)),
    Column("outcome", String(64)),  # none when the resident's session had expired
    Column("sources", Text, nullable=False),  # JSON list of the documents the answer cited
    Column("prompt_version", String(64), nullable=False),
    Column("question", Text),  # only for an answer said wrong or incomplete, personal data already masked
)

question_sets = Table(
    "question_sets",
    metadata,
    Column("name", String(48), primary_key=True),
    Column("content", Text, nullable=False),  # JSON Lines in the runner's format (eval.dataset)
    Column("cases", Integer, nullable=False),
    Column("changed", String(32), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(20), primary_key=True),  # its start time and a random suffix: newest last in order
    Column("set_name", String(48), nullable=False),
    Column("started_by", String(64), nullable=False),
    Column("started", String(32), nullable=False),
    Column("finished", String(32), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("done", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("corpus_hash", String(128), nullable=False),  # what an answer approved from this run is tied to
    Column("error", Text, nullable=False),
    Column("gate", Text),  # JSON: the release gate's checks, once finished
    Column("summary", Text),  # JSON: the runner's summary, once finished
    Column("process", String(64), nullable=False),  # the worker process that runs it (bot.web.staff.jobs)
    Column("machine", String(255), nullable=False),  # ... and its machine's host name
    Column("seen", Float, nullable=False),  # epoch seconds: that worker's last sign of life
    Column("stop_asked", Boolean, nullable=False, default=False),  # an agent asked, through any worker, that it stop
)

run_results = Table(
    "run_results",
    metadata,
    Column("run_id", String(20), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),  # the case's rank in the run
    Column("case_id", Text, nullable=False),
    Column("result", Text, nullable=False),  # JSON: the scored case as the runner writes it (eval.runner)
    Column("trace", Text, nullable=False),  # JSON: how its answer was made, for the case's page
)
