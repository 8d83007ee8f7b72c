"""Errors a town's IT person can act on; each message says the fix.

GuichetError
├── ConfigError          a setting has a bad value
├── ModelError           a model file is missing, corrupt or unloadable
│   └── IntegrityError   a file's sha256 does not match the catalogue
├── IndexError_          no index, or one built with another embedder
└── IngestionError       the corpus path is unusable as a whole
"""


class GuichetError(Exception):
    """Base of every expected failure; its message is shown as is, without a traceback."""


class ConfigError(GuichetError):
    """A setting or configuration file is invalid."""


class ModelError(GuichetError):
    """A model cannot be provisioned or loaded."""


class IntegrityError(ModelError):
    """An assembled model file does not have the expected sha256."""


class IndexError_(GuichetError):  # noqa: N801 - avoid shadowing the builtin IndexError
    """The index is missing, incomplete or does not match the configured embedder."""


class IngestionError(GuichetError):
    """The corpus cannot be ingested at all (a single bad file is only reported)."""


def explained(exc: BaseException) -> str:
    """What a failed start-up tells the town's IT person: the error's own words for an expected failure,
    otherwise what broke and what to do.

    >>> explained(ModuleNotFoundError("No module named 'httpx'", name="httpx"))
    "Python package 'httpx' is missing — install Guichet again ('pip install -e .' or rebuild the image)."
    """
    if isinstance(exc, GuichetError):
        return str(exc)
    if isinstance(exc, ModuleNotFoundError):
        return (
            f"Python package '{exc.name}' is missing — install Guichet again ('pip install -e .' or rebuild the image)."
        )
    return (
        f"Unexpected {type(exc).__name__} while loading: {exc} — the log has the traceback; check the file it names, "
        "or rebuild the index with 'guichet ingest'."
    )
