"""The run's ``status.json``: stage states, fingerprints, and stale outputs found and cleared.

A stage's fingerprint is its config section, the content hashes of the upstream outputs it reads
and the code version; :meth:`_Run.check` compares it with the one recorded for the outputs in
``run_dir`` and stops with :class:`StaleStageError` (naming what changed) unless asked to redo.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from cec._files import atomic_write

__all__ = ["StaleStageError"]

log = logging.getLogger("cec_distill.pipeline")


class StaleStageError(RuntimeError):
    """A stage's outputs in ``run_dir`` were made from other inputs than this run's."""


_HASH_WHOLE = 256 * 2**20  # files up to this size are hashed whole; bigger: size, head, tail


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= _HASH_WHOLE:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
        else:  # multi-GB weights: size and the first and last 16 MiB
            h.update(f"size={size}".encode())
            h.update(fh.read(2**24))
            fh.seek(size - 2**24)
            h.update(fh.read(2**24))
    return h.hexdigest()[:16]


def _digest(path: Path) -> str | None:
    """Content hash of a file or of a folder's files (names included); None if absent."""
    if path.is_file():
        return _file_digest(path)
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(x for x in path.rglob("*") if x.is_file()):
        h.update(f"{f.relative_to(path).as_posix()}\x00{_file_digest(f)}\x00".encode())
    return h.hexdigest()[:16]


def _code_version() -> str:
    import cec

    return cec.__version__


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out if out or not prefix else {prefix: {}}
    return {prefix: d}


def _changes(old: dict, new: dict) -> list[str]:
    """What differs between two fingerprints, in words."""
    out = []
    if old.get("code") != new.get("code"):
        out.append(f"code version {old.get('code')} -> {new.get('code')}")
    a, b = _flatten(old.get("config", {})), _flatten(new.get("config", {}))
    for k in sorted(set(a) | set(b)):
        if a.get(k, "<unset>") != b.get(k, "<unset>"):
            out.append(f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}")
    ia, ib = old.get("inputs", {}), new.get("inputs", {})
    for k in sorted(set(ia) | set(ib)):
        if ia.get(k) != ib.get(k):
            what = "is new" if k not in ia else "is gone" if ib.get(k) is None else "changed"
            out.append(f"{k} {what}")
    return out


# the stage each status entry belongs to; the order they run in (the baseline's generations
# come before training, which they do not depend on: --from train keeps them)
_STAGE_OF = {"generate_before": "generate"}
_RUN_ORDER = ("data", "label", "base", "generate_before", "train", "generate", "evaluate",
              "stats", "report")  # fmt: skip


class _Run:
    def __init__(self, study: dict, force: bool = False, from_stage: str | None = None):
        self.study = study
        self.dir = Path(study["run_dir"])
        self.status_path = self.dir / "status.json"
        self.status: dict[str, Any] = (
            json.loads(self.status_path.read_text()) if self.status_path.is_file() else {}
        )
        self.force = force
        first = "generate_before" if from_stage == "generate" else from_stage
        self.redo = set(_RUN_ORDER[_RUN_ORDER.index(first) :]) if first else set()

    def _write_status(self) -> None:
        atomic_write(self.status_path, json.dumps(self.status, indent=1) + "\n")

    def mark(self, stage: str, state: str, seconds: float, **info: Any) -> None:
        fp = self.status.get(stage, {}).get("fingerprint")
        self.status[stage] = {"state": state, "seconds": round(seconds, 1), **info}
        if fp is not None:
            self.status[stage]["fingerprint"] = fp
        self._write_status()
        log.info("stage %s: %s (%.1fs) %s", stage, state, seconds, info or "")

    def check(
        self, stage: str, outputs: list[Path], config: dict, inputs: dict[str, Path | None]
    ) -> None:
        """Make sure ``outputs`` were made from these inputs, or clear them; record the fingerprint.

        Raises:
            StaleStageError: outputs made from other inputs (or with no fingerprint recorded),
                without ``force`` or ``from_stage`` to redo them.
        """
        fp = {
            "code": _code_version(),
            "config": json.loads(json.dumps(config, default=str)),
            "inputs": {k: (_digest(p) if p is not None else None) for k, p in inputs.items()},
        }
        present = [p for p in outputs if p.exists()]
        prev = self.status.get(stage, {}).get("fingerprint")
        redo = stage in self.redo
        if present and not redo and prev != fp:
            why = (
                _changes(prev, fp)
                if prev is not None
                else ["no fingerprint was recorded for its outputs (an older cec, or by hand)"]
            )
            if not self.force:
                rel = ", ".join(str(p.relative_to(self.dir)) for p in present)
                raise StaleStageError(
                    f"stage {_STAGE_OF.get(stage, stage)!r} is stale: its outputs in {self.dir} "
                    f"({rel}) were made from other inputs: {'; '.join(why)}. Nothing was "
                    f"changed. Re-run with --force to redo the stale stages (force=True), "
                    f"--from {_STAGE_OF.get(stage, stage)} to redo it and every later stage "
                    f"(from_stage=...), or use another run_dir."
                )
            log.warning("stage %s is stale (%s): redoing it", stage, "; ".join(why))
            redo = True
        if redo and present:
            for p in present:
                _remove_output(p)
        self.status[stage] = {"state": "running", "fingerprint": fp}
        self._write_status()


def _remove_output(p: Path) -> None:
    if p.name == "teacher.jsonl":  # paid for: keep it aside
        p.rename(p.with_name(f"{p.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}"))
    elif p.is_dir():
        shutil.rmtree(p)
    else:
        p.unlink()
