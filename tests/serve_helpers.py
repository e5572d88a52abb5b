"""`transformers serve` on a tiny random Llama: a real OpenAI-compatible server, offline.

Shared by the tests that need a server that is not ours (tests/test_teacher.py,
tests/test_llm_judge.py). transformers >= 5 with fastapi and uvicorn; a few seconds to start.
Use from a module-scoped fixture::

    @pytest.fixture(scope="module")
    def hf_serve(tmp_path_factory):
        yield from start_serve(tmp_path_factory.mktemp("serve"), max_positions=2048)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

__all__ = ["start_serve", "served"]


def start_serve(root: Path, max_positions: int):
    """``transformers serve`` on a tiny random Llama with a window of ``max_positions``: a
    generator that yields the server's address and stops it afterwards."""
    import socket
    import urllib.request
    from types import SimpleNamespace

    try:
        import transformers.cli.serve  # noqa: F401
        from transformers.utils.import_utils import is_serve_available
    except ImportError:
        pytest.skip("this transformers has no `transformers serve` command (needs transformers 5)")
    if not is_serve_available():
        pytest.skip("`transformers serve` needs fastapi and uvicorn: pip install 'cec[dev]'")
    from tiny_models import build_tiny_llama

    model = build_tiny_llama(root / "tiny", max_positions=max_positions)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = root / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-c",
        "import sys; from transformers.cli.transformers import main; sys.exit(main())",
        "serve",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--default-seed",
        "0",
    ]
    with open(log_path, "w") as log_fh:
        proc = subprocess.Popen(cmd, env=env, stdout=log_fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"transformers serve exited ({proc.returncode}):\n{log_path.read_text()}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"server not up in 180 s:\n{log_path.read_text()}"
            time.sleep(0.2)
        yield SimpleNamespace(
            base_url=f"http://127.0.0.1:{port}/v1", model=str(model), log=log_path
        )
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def served(server, status: int) -> int:
    """Chat requests the server answered with ``status`` so far (uvicorn's access log)."""
    return server.log.read_text(errors="replace").count(
        f'"POST /v1/chat/completions HTTP/1.1" {status}'
    )
