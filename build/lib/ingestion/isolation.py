"""One parser on one untrusted file, in a child process with a time and a memory limit.

A crafted PDF can make a parser loop or allocate without end. Run in the build's own process, it would hang the
build or take the server's memory; in a child, it is killed at the limit and the file becomes one line of the
ingestion report. Children are forked from a small server process that has only the parsers loaded
(``forkserver``), so each file costs a fork, not a Python start-up.
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["ingestion.loaders"])


class Overrun(Exception):
    """The parser went past its time or memory limit, or died; the message says which."""


def run_isolated(parse: Callable[[bytes], object], data: bytes, seconds: float, max_memory_bytes: int):
    """``parse(data)`` in a child process; its exception is raised here, ``Overrun`` past a limit.

    ``parse`` must be a module-level function (it is sent to the child by name).
    """
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    child = _CONTEXT.Process(target=_run, args=(parse, data, max_memory_bytes, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            raise Overrun(f"parsing took more than {seconds:g} s")
        try:
            succeeded, value = receiver.recv()
        except EOFError:
            child.join(5)
            raise Overrun(f"the parser died (exit code {child.exitcode}), most likely past its memory limit") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    if not succeeded:
        raise value
    return value


def _run(parse, data: bytes, max_memory_bytes: int, sender) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (max_memory_bytes, max_memory_bytes))
    try:
        result = (True, parse(data))
    except MemoryError:
        result = (False, Overrun("the parser went past its memory limit"))
    except Exception as exc:  # noqa: BLE001 - sent back as is when it pickles, by its text otherwise
        result = (False, exc)
    try:
        sender.send(result)
    except Exception:  # noqa: BLE001 - an exception that does not pickle
        sender.send((False, Overrun(f"{type(result[1]).__name__}: {result[1]}")))
