"""The default model loads and scores with networking disabled (fresh process, no socket).

One subprocess installs an audit hook (``sys.addaudithook``) that raises on any socket being
connected, bound other than to loopback, data sent, or a host name looked up (creating a socket
and binding it to ::1 is allowed: urllib3 does so at import to probe for IPv6, with no traffic), then imports cec, checks that bad
input fails before transformers is even imported, and scores with the default model without
importing sentence-transformers at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, sys

    attempts = []

    NETWORK = ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
               "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
               "socket.getnameinfo")

    def no_network(event, args):
        if event == "socket.bind" and args[1][0] in ("::1", "127.0.0.1"):
            return  # a loopback probe (urllib3's IPv6 check at import): no traffic
        if event.startswith(NETWORK):
            attempts.append(event)
            raise OSError(f"network disabled in this test: {event}")

    sys.addaudithook(no_network)

    import socket

    try:  # the hook works: even a local connection cannot be made
        socket.create_connection(("127.0.0.1", 9), timeout=1)
        hook_works = False
    except OSError as exc:
        hook_works = "network disabled" in str(exc)
    attempts.clear()

    import cec

    errors = {}
    for name, call in [
        ("none", lambda: cec.score(None, "x.")),
        ("number", lambda: cec.score("x.", 42)),
        ("lengths", lambda: cec.score(["a.", "b."], ["a."])),
        ("model", lambda: cec.score("a.", "b.", model="no-such-model-anywhere")),
        ("splitter", lambda: cec.score("a.", "b.", splitter="no-such-splitter")),
    ]:
        try:
            call()
        except (TypeError, ValueError) as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
    loaded_before = "transformers" in sys.modules

    value = cec.score(
        "Greenhouse gases trap heat. The planet warms.",
        "The planet warms because greenhouse gases trap heat.",
    )
    result = cec.score(["CO2 traps heat."], [["Ice melts.", "Heat is trapped by CO2."]])
    print(json.dumps({
        "value": value,
        "best_ref": int(result.best_ref[0]),
        "signature": str(result.signature),
        "errors": errors,
        "loaded_before": loaded_before,
        "loaded_after": "transformers" in sys.modules,
        "st_after": "sentence_transformers" in sys.modules,
        "attempts": attempts,
        "hook_works": hook_works,
    }))
    """
)


def test_default_model_scores_with_network_disabled(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS_"))
    }
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf-home"),  # an empty cache: nothing to find there
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["hook_works"] is True and out["attempts"] == []
    assert 0.5 < out["value"] <= 1.0
    assert out["best_ref"] == 1
    assert "model:all-MiniLM-L6-v2@" in out["signature"] and "|trunc:256" in out["signature"]
    # bad input fails naming the argument, before transformers is imported; scoring with the
    # default model never imports sentence-transformers
    assert out["loaded_before"] is False and out["loaded_after"] is True
    assert out["st_after"] is False
    assert set(out["errors"]) == {"none", "number", "lengths", "model", "splitter"}
    assert out["errors"]["none"].startswith("TypeError") and "generated" in out["errors"]["none"]
    assert (
        out["errors"]["number"].startswith("TypeError") and "reference" in out["errors"]["number"]
    )
    assert out["errors"]["lengths"].startswith("ValueError")
    assert "model" in out["errors"]["model"] and "splitter" in out["errors"]["splitter"]
