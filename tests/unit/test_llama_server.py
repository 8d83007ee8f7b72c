"""The managed llama-server's supervision, with a stand-in binary that only answers /health (the real server is
proven end to end in tests/e2e/test_llama_server.py)."""

import hashlib
import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from bot.engines.llama_server import (
    AMX_KERNELS,
    ManagedLlamaServer,
    ServerOptions,
    build_record,
    fix_amx_tile_config,
    unpack_sources,
)
from bot.engines.model_store import describe
from bot.errors import ModelError
from bot.settings import REPO_ROOT

STAND_IN = textwrap.dedent(
    """\
    #!{python}
    import http.server, sys
    if "--fail" in sys.argv[1:] or {fail}:
        sys.exit(3)
    port = int(sys.argv[sys.argv.index("--port") + 1])
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
        def log_message(self, *args):
            pass
    http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
    """
)


def stand_in(tmp_path: Path, fail: bool = False) -> Path:
    binary = tmp_path / "llama-server"
    binary.write_text(STAND_IN.format(python=sys.executable, fail=fail))
    binary.chmod(0o755)
    return binary


def options(binary: Path) -> ServerOptions:
    return ServerOptions(binary, Path("model.gguf"), 2048, 4, 2, repacking=True)


def healthy(server: ManagedLlamaServer) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_missing_binary_says_how_to_build_it(tmp_path):
    with pytest.raises(ModelError, match="guichet models build-server"):
        ManagedLlamaServer(options(tmp_path / "absent"))


def test_the_server_is_ready_when_started_and_gone_when_stopped(tmp_path):
    server = ManagedLlamaServer(options(stand_in(tmp_path))).start()
    try:
        assert healthy(server) and server.url == f"http://127.0.0.1:{server.port}/v1"
    finally:
        server.stop()
    assert not healthy(server)


def test_a_server_that_dies_is_started_again(tmp_path):
    server = ManagedLlamaServer(options(stand_in(tmp_path)), restart_every=0.5).start()
    try:
        first = server.pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while not (server.restarts and healthy(server)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.restarts == 1 and server.pid != first and healthy(server)
    finally:
        server.stop()


def test_a_server_that_cannot_start_is_reported_with_its_exit_code(tmp_path):
    with pytest.raises(ModelError, match="exited with code 3"):
        ManagedLlamaServer(options(stand_in(tmp_path, fail=True))).start()


def test_models_list_names_the_engine_and_its_hash_or_that_it_is_not_built(tmp_path):
    binary = stand_in(tmp_path)
    llm, embedder = tmp_path / "m.gguf", tmp_path / "embedder"
    built = describe(llm, embedder, engine_path=binary)[-1]
    assert (built.role, built.present, built.licence) == ("llm engine", True, "MIT")
    assert built.sha256 == hashlib.sha256(binary.read_bytes()).hexdigest()
    missing = describe(llm, embedder, engine_path=tmp_path / "absent")[-1]
    assert (missing.present, missing.sha256) == (False, "(not built)")
    assert [i.role for i in describe(llm, embedder)] == ["llm", "embedder"]


def test_models_list_says_the_engine_repacks_the_weights_when_its_build_has_the_amx_fix(tmp_path):
    binary = stand_in(tmp_path)
    llm, embedder = tmp_path / "m.gguf", tmp_path / "embedder"
    assert build_record(binary) == {}
    binary.with_name("build.json").write_text('{"recipe": 2, "amx_tile_config_fixed": true}')
    assert build_record(binary)["amx_tile_config_fixed"] is True
    assert "weight repacking on" in describe(llm, embedder, engine_path=binary)[-1].precision
    binary.with_name("build.json").write_text("not json")
    assert build_record(binary) == {}


AMX_KERNEL_SOURCE = """\
inline void ggml_tile_config_init(void) {
    alignas(64) tile_config_t tc = {};
    tc.rows[0] = 8;   tc.colsb[0] = 64;

    _tile_loadconfig(&tc);
    done = true;
}
"""


def test_the_amx_kernels_get_their_compiler_barrier_once_and_changed_sources_are_left_alone(tmp_path):
    kernels = tmp_path / "llama.cpp" / AMX_KERNELS
    kernels.parent.mkdir(parents=True)
    kernels.write_text(AMX_KERNEL_SOURCE)
    assert fix_amx_tile_config(tmp_path / "llama.cpp")
    fixed = kernels.read_text()
    barrier, load = fixed.index('__asm__ __volatile__("" : : "r"(&tc) : "memory");'), fixed.index("_tile_loadconfig")
    assert fixed.index("tc.rows[0] = 8;") < barrier < load
    assert fix_amx_tile_config(tmp_path / "llama.cpp") and kernels.read_text() == fixed  # once
    kernels.write_text(AMX_KERNEL_SOURCE.replace("_tile_loadconfig(&tc);", "load_config(&tc);"))
    assert not fix_amx_tile_config(tmp_path / "llama.cpp")
    assert "__asm__" not in kernels.read_text()
    assert not fix_amx_tile_config(tmp_path / "elsewhere")  # no such tree


def test_the_server_ends_with_a_process_killed_before_it_could_stop_it(tmp_path):
    owner = textwrap.dedent(
        f"""\
        import time
        from pathlib import Path
        from bot.engines.llama_server import ManagedLlamaServer, ServerOptions, unpack_sources
        options = ServerOptions(Path({str(stand_in(tmp_path))!r}), Path("model.gguf"), 2048, 4, 2, repacking=True)
        server = ManagedLlamaServer(options).start()
        print(server.port, flush=True)
        time.sleep(600)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", owner], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        port = int(process.stdout.readline())
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    finally:
        process.kill()  # no exit handler runs
        process.communicate()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and listening(port):
        time.sleep(0.2)
    assert not listening(port)


def listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
        return True
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("safe_filter", [True, False])
def test_a_source_archive_is_unpacked_inside_its_folder_only(tmp_path, monkeypatch, safe_filter):
    if not safe_filter:  # a Python older than 3.11.4 (Debian 12's): our own checks
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    good, bad = tmp_path / "good.tar.gz", tmp_path / "bad.tar.gz"
    for archive, name in ((good, "pkg/CMakeLists.txt"), (bad, "../outside.txt")):
        with tarfile.open(archive, "w:gz") as out:
            member = tarfile.TarInfo(name)
            member.size = 2
            out.addfile(member, io.BytesIO(b"ok"))
    unpack_sources(good, tmp_path / "src")
    assert (tmp_path / "src" / "pkg" / "CMakeLists.txt").read_text() == "ok"
    with pytest.raises((ModelError, tarfile.TarError)):
        unpack_sources(bad, tmp_path / "src2")
    assert not (tmp_path / "outside.txt").exists()
