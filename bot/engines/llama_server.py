"""llama.cpp's own server, run and supervised by Guichet, so turns in progress share the model's forward passes.

The in-process model (``LlamaCppModel``) answers one turn at a time. ``llama-server`` keeps several *slots*
(sequences in one KV cache) and decodes them together, one forward pass for every slot's next token (continuous
batching): at the morning peak, residents' turns are answered side by side instead of queueing. Guichet starts it
on loopback with the catalogue's GGUF and the weight layout chosen for this CPU, waits until the model is loaded,
restarts it if it dies, stops it on exit, and talks to it through ``OpenAICompatibleModel``.

The binary is built once from the same llama.cpp sources as the installed llama-cpp-python (its source
distribution vendors them), so both engines run the same kernels, with one compiler fix that lets the server
repack the weights on a CPU with AMX (``fix_amx_tile_config``): ``guichet models build-server``.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import ModelError

if TYPE_CHECKING:
    from bot.engines.llm import Repacking
    from bot.settings import Settings

log = logging.getLogger(__name__)

# What the build compiles: the server alone, statically linked, without the web UI (fetched from the internet)
# or HTTPS (it listens on loopback only).
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
)


@dataclass(frozen=True)
class ServerOptions:
    """How ``llama-server`` runs: ``slots`` turns decoded together, each with ``context`` tokens."""

    binary: Path
    model: Path
    context: int
    slots: int
    threads: int
    repacking: bool
    speculative: str = ""  # llama.cpp's draftless speculative decoding, e.g. "ngram-simple" (empty: off)

    def command(self, port: int) -> list[str]:
        """The command line, listening on loopback ``port``.

        >>> options = ServerOptions(Path("llama-server"), Path("m.gguf"), 2048, 4, 2, repacking=False)
        >>> " ".join(options.command(8081))  # doctest: +NORMALIZE_WHITESPACE
        'llama-server --model m.gguf --host 127.0.0.1 --port 8081 --parallel 4 --ctx-size 8192 --threads 2
         --threads-batch 2 --batch-size 512 --no-webui --no-slots --cache-ram 0 --no-repack'
        """
        command = [
            str(self.binary),
            *("--model", str(self.model), "--host", "127.0.0.1", "--port", str(port)),
            *("--parallel", str(self.slots), "--ctx-size", str(self.context * self.slots)),
            *("--threads", str(self.threads), "--threads-batch", str(self.threads), "--batch-size", "512"),
            # no web page, no slot inspection (it shows prompts), no host-memory prompt cache beside the slots'
            *("--no-webui", "--no-slots", "--cache-ram", "0"),
        ]
        if not self.repacking:
            command.append("--no-repack")
        if self.speculative:
            command += ["--spec-type", self.speculative]
        return command


class ManagedLlamaServer:
    """One ``llama-server`` child process on a free loopback port, restarted if it exits while in use."""

    def __init__(self, options: ServerOptions, ready_seconds: float = 300.0, restart_every: float = 10.0):
        if not options.binary.is_file():
            raise ModelError(
                f"No llama-server at {options.binary} — build it once with 'guichet models build-server' "
                "(make llama-server), or set GUICHET_LLM_SERVER_PATH to one built from llama.cpp."
            )
        self.options, self.ready_seconds, self.restart_every = options, ready_seconds, restart_every
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.restarts = 0
        self._last_launch = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()

    def start(self) -> ManagedLlamaServer:
        """Start the server and return once the model is loaded (``/health`` answers 200).

        One supervisor thread, alive as long as this process, launches the server and every restart: the
        server is killed when that thread ends, so it ends with this process even when no exit handler runs (a
        process killed, or uvicorn re-raising the SIGTERM it caught once it has shut down).
        """
        ready, failure = threading.Event(), list[ModelError]()
        supervisor = threading.Thread(
            target=self._supervise, args=(ready, failure), name="llama-server-supervisor", daemon=True
        )
        supervisor.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        self._stopping.set()
        process = self._process
        if process and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _launch(self) -> None:
        self._last_launch = time.monotonic()
        command = self.options.command(self.port)
        log.info("starting llama-server: %s", " ".join(command))
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C in the terminal reaches Guichet, which stops the server itself
            preexec_fn=_end_with_parent_thread,
        )
        threading.Thread(target=self._relay_log, args=(self._process,), daemon=True).start()
        self._wait_until_ready(self._process)

    def _relay_log(self, process: subprocess.Popen[bytes]) -> None:
        """The server's own log, at debug level (it holds no prompt: prompts are not logged by llama-server)."""
        assert process.stderr is not None
        with process.stderr as lines:
            for line in lines:
                log.debug("llama-server: %s", line.decode(errors="replace").rstrip())

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        import httpx

        deadline = time.monotonic() + self.ready_seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ModelError(
                    f"llama-server exited with code {process.returncode} while loading {self.options.model.name} "
                    "(run its command by hand to read why: set GUICHET_LOG_LEVEL=DEBUG to see it)."
                )
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        process.kill()
        raise ModelError(f"llama-server did not load {self.options.model.name} within {self.ready_seconds:.0f} s.")

    def _supervise(self, ready: threading.Event, failure: list[ModelError]) -> None:
        """Launch the server, then restart it when it exits unasked (turns in flight fail with a model error
        and are retried by the resident); at most once every ``restart_every`` seconds, so a server that cannot
        start does not spin."""
        try:
            self._launch()
        except ModelError as exc:
            failure.append(exc)
            return
        finally:
            ready.set()
        while not self._stopping.wait(1.0):
            process = self._process
            if process is None or process.poll() is None:
                continue
            log.error("llama-server exited with code %s; restarting it", process.returncode)
            time.sleep(max(0.0, self.restart_every - (time.monotonic() - self._last_launch)))
            if self._stopping.is_set():
                return
            try:
                self._launch()
                self.restarts += 1
            except ModelError as exc:
                log.error("%s", exc)


def unpack_sources(archive: Path, into: Path) -> None:
    """Unpack a source archive, refusing members that would land outside ``into`` or are links or devices
    (``filter="data"`` where this Python has it: 3.11.4 and later; Debian 12's 3.11.2 has not)."""
    with tarfile.open(archive) as sources:
        if hasattr(tarfile, "data_filter"):
            sources.extractall(into, filter="data")
            return
        root = into.resolve()
        for member in sources.getmembers():
            target = (into / member.name).resolve()
            if not (member.isfile() or member.isdir()) or not target.is_relative_to(root):
                raise ModelError(f"{archive.name}: unexpected member {member.name!r}; not unpacked.")
        sources.extractall(into)


def _end_with_parent_thread() -> None:
    """In the child, before it runs the server: be killed when the thread that started it ends (Linux). SIGKILL,
    not SIGTERM: a llama-server was seen to hang in its graceful shutdown, and it keeps nothing worth saving."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def llama_cpp_version() -> str:
    return metadata.version("llama_cpp_python")


def resolve_server_path(settings: Settings) -> Path:
    """The llama-server that will run (and that ``build-server`` builds): ``GUICHET_LLM_SERVER_PATH``, else beside
    the models, named by the llama-cpp-python version whose sources it comes from (an upgrade of the binding
    builds a matching server)."""
    default = settings.models_dir.parent / "engines" / f"llama-server-{llama_cpp_version()}" / "llama-server"
    return settings.llm_server_path or default


# How ``build_server`` builds; a server an older recipe built is built again. 2: the AMX tile-configuration fix.
BUILD_RECIPE = 2
AMX_KERNELS = Path("ggml/src/ggml-cpu/amx/mmq.cpp")
_TILE_CONFIG_LOAD = "    _tile_loadconfig(&tc);\n"
_TILE_CONFIG_FENCE = '    __asm__ __volatile__("" : : "r"(&tc) : "memory");  // Guichet: keep the stores above\n'


def fix_amx_tile_config(source: Path) -> bool:
    """Make llama.cpp's AMX kernels load the tile configuration they have just written; True once they do.

    GCC 12's ``_tile_loadconfig`` declares that it reads 8 bytes of its 64-byte argument, so at ``-O2`` the
    stores of the tile shapes before it are removed as dead. ``ldtilecfg`` then loads shapes the CPU rejects,
    and the first prompt read with repacked weights on a CPU with AMX ends in a segmentation fault (measured on
    such a machine: the configuration held no row count). A compiler barrier that takes the configuration's
    address keeps the stores. False when ``source`` (a llama.cpp tree) has no such line: the sources changed.
    """
    kernels = source / AMX_KERNELS
    text = kernels.read_text(encoding="utf-8") if kernels.is_file() else ""
    if _TILE_CONFIG_FENCE in text:
        return True
    if text.count(_TILE_CONFIG_LOAD) != 1:
        return False
    kernels.write_text(text.replace(_TILE_CONFIG_LOAD, _TILE_CONFIG_FENCE + _TILE_CONFIG_LOAD), encoding="utf-8")
    return True


def build_record(binary: Path) -> dict[str, object]:
    """What ``build_server`` wrote beside ``binary`` (empty for a server built another way)."""
    try:
        record = json.loads(binary.with_name("build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def server_repacking(setting: str, binary: Path) -> Repacking:
    """The weight repacking ``binary`` runs with: the binding's build features (the server is compiled from its
    sources with the same flags), and whether ``build_server`` fixed its AMX kernels."""
    from bot.engines.llm import llama_cpp_features, weight_repacking_choice

    fixed = bool(build_record(binary).get("amx_tile_config_fixed"))
    return weight_repacking_choice(setting, llama_cpp_features(), amx_fixed=fixed)


def build_server(destination: Path, say: Callable[[str], None] = print, jobs: int | None = None) -> Path:
    """Build ``llama-server`` from the source distribution of the installed llama-cpp-python (PyPI, hash-checked
    by pip), into ``destination``, with ``fix_amx_tile_config``. Nothing to do if this recipe already built it.
    About 4 minutes on 2 cores."""
    if destination.is_file() and build_record(destination).get("recipe") == BUILD_RECIPE:
        say(f"llama-server already built: {destination}")
        return destination
    for tool in ("cmake", "c++"):
        if not shutil.which(tool):
            raise ModelError(f"Building llama-server needs {tool} (Debian: apt-get install cmake g++).")
    version = llama_cpp_version()
    with tempfile.TemporaryDirectory(prefix="guichet-llama-server-") as work:
        say(f"Downloading llama-cpp-python {version}'s sources (PyPI)…")
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--no-binary", ":all:", f"llama-cpp-python=={version}", "-d", work),
            ],
            check=True,
        )
        archive = next(Path(work).glob("llama_cpp_python-*.tar.gz"))
        unpack_sources(archive, Path(work))
        source = Path(work) / archive.name.removesuffix(".tar.gz") / "vendor" / "llama.cpp"
        amx_fixed = fix_amx_tile_config(source)
        if not amx_fixed:
            say(f"{AMX_KERNELS} changed: built as it is; on a CPU with AMX the weights will not be repacked.")
        build = Path(work) / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        say("Compiling llama-server (about 4 minutes on 2 cores)…")
        subprocess.run(["cmake", "-S", str(source), "-B", str(build), *generator, *CMAKE_OPTIONS], check=True)
        parallel = str(jobs or os.cpu_count() or 1)
        subprocess.run(["cmake", "--build", str(build), "--target", "llama-server", "-j", parallel], check=True)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_suffix(".partial")
        shutil.copy2(build / "bin" / "llama-server", partial)
        partial.replace(destination)
        record = {"recipe": BUILD_RECIPE, "llama_cpp_python": version, "amx_tile_config_fixed": amx_fixed}
        destination.with_name("build.json").write_text(json.dumps(record) + "\n", encoding="utf-8")
    say(f"llama-server built: {destination}")
    return destination


_MANAGED: dict[tuple[Path, Path], ManagedLlamaServer] = {}
_MANAGED_LOCK = threading.Lock()


def managed_server(settings: Settings, model: Path) -> ManagedLlamaServer:
    """This process's llama-server for ``model`` as the settings describe it, started on first use and stopped
    when the process exits."""
    binary = resolve_server_path(settings)
    with _MANAGED_LOCK:
        if (binary, model) not in _MANAGED:
            repacking = server_repacking(settings.llm_weight_repacking, binary)
            log.info("llama-server weight repacking %s", repacking)
            options = ServerOptions(
                binary,
                model,
                settings.llm_context,
                settings.llm_slots,
                settings.llm_threads,
                repacking.on,
                settings.llm_speculative,
            )
            server = ManagedLlamaServer(options).start()
            atexit.register(server.stop)
            _MANAGED[(binary, model)] = server
        return _MANAGED[(binary, model)]
