"""``llm_judge``: a 1-5 grade from an LLM behind any OpenAI-compatible endpoint.

The judge is sent the rubric (:mod:`cec_distill.metrics.judge_rubric`) filled with the item's
claim/evidence or premise/hypothesis (when the item has them), its reference explanation(s) and
the generated explanation, and must answer ``Score: N`` / ``Reason: ...``. Requests go through the
teacher's machinery (:mod:`cec_distill.teacher`): the same ``openai`` client, retries with
backoff on 429/5xx/timeouts/dropped connections, a stop with the server's own words on 401/403/404
or when the first requests all fail with the same client error, keys redacted everywhere, a
budget of requests and tokens.

* An answer that does not parse is asked again once (the conversation goes on with the judge's
  answer and :data:`~cec_distill.metrics.judge_rubric.FOLLOW_UP`); if the second answer does not
  parse either, the item is recorded as *unparsed*: NaN in the item column, left out of the
  corpus mean, counted in the run's info (``unparsed``), never scored 0.
* Records (``judge_records``, a JSONL file) are append-only and keyed by (item id, system): each
  is fsync'd before it counts, a re-run reuses every finished judgement and asks only for the
  rest, so a kill and a restart judge every item exactly once (the requests in flight at the kill
  may be paid twice). A failed item (after its retries) is recorded with its error and asked
  again by the next run. A records file belongs to one judge: a record by another judge model,
  rubric or temperature, or of another text for the same (item, system), is refused with an
  error naming the file, not silently mixed or overwritten.
* The budget (``judge_max_total_tokens``, ``judge_max_requests``) stops the run cleanly: no new
  request, the ones in flight written; the items not judged are NaN and counted as ``pending``.
* The signature carries the judge model, the model the server reported, the rubric version and
  hash, the temperature, the seed and the token limit, as CEC's does.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cec_distill.metrics.base import Metric, _version, register_metric
from cec_distill.metrics.judge_rubric import FOLLOW_UP, Rubric, load_rubric, parse_judgement

__all__ = ["LLMJudgeMetric", "JUDGE_OPTIONS"]

log = logging.getLogger("cec_distill.teacher")

#: The keyword options of :func:`~cec_distill.metrics.get_metric` that ``llm_judge`` takes.
JUDGE_OPTIONS = (
    "judge_model",
    "judge_base_url",
    "judge_api_key_env",
    "judge_temperature",
    "judge_seed",
    "judge_concurrency",
    "judge_max_tokens",
    "judge_max_total_tokens",
    "judge_max_requests",
    "judge_records",
    "judge_rubric",
    "judge_timeout",
    "judge_max_attempts",
    "judge_backoff_base",
    "judge_client",
)

#: Record fields that must match between a records file and the run reading it.
_SAME_JUDGE = ("judge_model", "rubric_hash", "temperature")


@dataclass(frozen=True)
class _Item:
    """One (item, system) to judge, shaped for the teacher's labeller (``id``, ``dataset``,
    ``label``) with the messages already built."""

    id: str
    key: str
    item: Any
    system: str
    messages: tuple[dict[str, str], ...]
    input_hash: str
    dataset: str = "judge"
    label: str | None = None


class _Template:
    """The teacher's template interface over ready messages (``render``, ``name``, ``hash``)."""

    def __init__(self, rubric: Rubric):
        self.name = rubric.name
        self.hash = rubric.hash

    def render(self, item: _Item) -> list[dict[str, str]]:
        return [dict(m) for m in item.messages]


class _MemoryStore:
    """Records kept in memory only (``judge_records=None``): nothing survives the process."""

    path = None

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._records[record["key"]] = record

    def latest(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._records)

    def close(self) -> None:
        pass


def _key(item: Any, system: str) -> str:
    return json.dumps([str(item), system], ensure_ascii=False)


def _judge_class() -> type:
    """The teacher's labeller, taught to parse, retry once and record judgements (built lazily:
    importing the teacher imports ``openai``)."""
    from cec_distill.teacher.labeller import _Labeller

    class _Judge(_Labeller):
        def __init__(self, *args: Any, rubric: Rubric, **kw: Any):
            super().__init__(*args, **kw)
            self.rubric = rubric

        def label(self, item: _Item) -> dict[str, Any] | None:  # type: ignore[override]
            first = super().label(item)
            if first is None:
                return None  # stopped (budget, Ctrl-C, a fatal error) before any answer
            tries = [first]
            if not first.get("error") and parse_judgement(first["explanation"]) is None:
                log.info("%s: the judge's answer did not parse; asking once more", item.key)
                again = replace(
                    item,
                    messages=(
                        *item.messages,
                        {"role": "assistant", "content": first["explanation"]},
                        {"role": "user", "content": FOLLOW_UP},
                    ),
                )
                second = super().label(again)
                if second is None:
                    return None  # stopped before the retry: asked again by the next run
                tries.append(second)
            return self._record(item, tries)

        def _record(self, item: _Item, tries: list[dict[str, Any]]) -> dict[str, Any]:
            last = tries[-1]
            parsed = None if last.get("error") else parse_judgement(last["explanation"])
            usage: dict[str, int] = {}
            for t in tries:
                for k, v in (t.get("usage_all_attempts") or {}).items():
                    usage[k] = usage.get(k, 0) + v
            rec = {
                "key": item.key,
                "id": str(item.item),
                "item": item.item,
                "system": item.system,
                "judge_model": self.config.model,
                "base_url": last.get("base_url"),
                "temperature": self.config.temperature,
                "seed": self.config.seed,
                "max_tokens": self.config.max_tokens,
                "rubric": self.rubric.name,
                "rubric_version": self.rubric.version,
                "rubric_hash": self.rubric.hash,
                "input_hash": item.input_hash,
                "score": parsed[0] if parsed else None,
                "reason": parsed[1] if parsed else None,
                "unparsed": bool(not last.get("error") and parsed is None),
                "answers": [t.get("explanation") for t in tries if not t.get("error")],
                "error": last.get("error"),
                "response_model": last.get("response_model"),
                "system_fingerprint": last.get("system_fingerprint"),
                "finish_reason": last.get("finish_reason"),
                "usage": usage or None,
                "requests": sum(int(t.get("attempts") or 0) for t in tries),
                "retries": [r for t in tries for r in t.get("retries") or []],
                "started_at": tries[0].get("started_at"),
                "finished_at": last.get("finished_at"),
            }
            if rec["unparsed"]:
                log.warning(
                    "%s: the judge's answer did not parse twice; recorded as unparsed (not "
                    "scored): %.120r",
                    item.key,
                    last["explanation"],
                )
            return rec

    return _Judge


class LLMJudgeMetric(Metric):
    """A 1-5 grade from an LLM judge (see the module docstring); one column, ``llm_judge``.

    Args:
        judge_model: The judge's model (or deployment) name; required.
        judge_base_url: OpenAI-compatible API root (None: the ``openai`` default).
        judge_api_key_env: Environment variable holding the key (a local server needs none).
        judge_temperature: Sampling temperature (0: as reproducible as the server allows).
        judge_seed: Seed sent with each request (None: not sent).
        judge_concurrency: Requests in flight at once.
        judge_max_tokens: Completion-token limit per request.
        judge_max_total_tokens: Budget: total tokens in one run (None: unlimited).
        judge_max_requests: Budget: requests in one run, retries included (None: unlimited).
        judge_records: The records JSONL (append-only, resumable); None keeps them in memory.
        judge_rubric: A rubric file (default: the built-in rubric v1).
        judge_timeout: Seconds before a request counts as hung.
        judge_max_attempts: Attempts per request (first try included) on retryable errors.
        judge_backoff_base: First backoff in seconds (doubles per attempt, with jitter).
        judge_client: A ready ``openai`` client to use instead of building one.

    Raises:
        ValueError: A missing judge model or a bad option value, named.
        cec_distill.teacher.MissingAPIKeyError: The key variable is unset for a remote server.
    """

    name = "llm_judge"
    columns = ("llm_judge",)
    uses_context = True

    def __init__(
        self,
        judge_model: str | None = None,
        judge_base_url: str | None = None,
        judge_api_key_env: str = "OPENAI_API_KEY",
        judge_temperature: float = 0.0,
        judge_seed: int | None = 0,
        judge_concurrency: int = 4,
        judge_max_tokens: int | None = 128,
        judge_max_total_tokens: int | None = None,
        judge_max_requests: int | None = None,
        judge_records: str | os.PathLike[str] | None = None,
        judge_rubric: str | os.PathLike[str] | Rubric | None = None,
        judge_timeout: float = 60.0,
        judge_max_attempts: int = 6,
        judge_backoff_base: float = 1.0,
        judge_client: Any = None,
    ):
        from cec_distill.teacher.client import resolve_api_key
        from cec_distill.teacher.config import TeacherConfig

        if not isinstance(judge_model, str) or not judge_model.strip():
            raise ValueError(
                "judge_model: llm_judge needs the judge's model name (--judge-model), "
                f"got {judge_model!r}"
            )
        try:
            self.config = TeacherConfig(
                model=judge_model, base_url=judge_base_url, api_key_env=judge_api_key_env,
                temperature=judge_temperature, seed=judge_seed, max_tokens=judge_max_tokens,
                timeout=judge_timeout, concurrency=judge_concurrency,
                max_attempts=judge_max_attempts, backoff_base=judge_backoff_base,
                max_requests=judge_max_requests, max_total_tokens=judge_max_total_tokens,
                on_length="keep",
            )  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise ValueError(f"llm_judge: judge_{exc}") from None
        self.rubric = load_rubric(judge_rubric)
        self.records = Path(judge_records) if judge_records is not None else None
        if self.records is not None and self.records.is_dir():
            raise ValueError(f"judge_records: {self.records} is a directory; name a .jsonl file")
        self.client = judge_client
        self.api_key = None if judge_client is not None else resolve_api_key(self.config)
        self.served: set[str] = set()
        self._info: dict[str, Any] = {}

    # ------------------------------------------------------------------ scoring

    def item_scores(self, generated, references, *, ids, contexts, system):  # type: ignore[override]
        from cec_distill.prompts import prompt_hash

        sys_name = "" if system is None else str(system)
        items: list[_Item] = []
        seen: set[str] = set()
        for i, (gen, refs, ctx) in enumerate(zip(generated, references, contexts, strict=True)):
            key = _key(ids[i], sys_name)
            if key in seen:
                raise ValueError(
                    f"ids: {ids[i]!r} appears twice; the judge's records are keyed by (item id, "
                    "system), so every id must be unique"
                )
            seen.add(key)
            msgs = self.rubric.render(ctx, refs, gen)
            items.append(_Item(id=key, key=key, item=ids[i], system=sys_name,
                               messages=tuple(msgs), input_hash=prompt_hash(msgs)))  # fmt: skip
        latest = self._judge(items)
        scores = np.full(len(items), math.nan)
        counts = {"scored": 0, "unparsed": 0, "failed": 0, "pending": 0}
        for k, it in enumerate(items):
            rec = latest.get(it.key)
            if rec is None:
                counts["pending"] += 1
            elif rec.get("error"):
                counts["failed"] += 1
            elif rec.get("unparsed") or rec.get("score") is None:
                counts["unparsed"] += 1
            else:
                counts["scored"] += 1
                scores[k] = float(rec["score"])
            if rec is not None and rec.get("response_model"):
                self.served.add(str(rec["response_model"]))
        self._info.update(counts)
        return {"llm_judge": scores}

    def _judge(self, items: list[_Item]) -> dict[str, dict[str, Any]]:
        from cec_distill.store import JsonlStore
        from cec_distill.teacher.client import make_client
        from cec_distill.teacher.errors import TeacherError
        from cec_distill.teacher.redact import Redactor
        from cec_distill.teacher.runner import LabelSummary, _run_pool

        store: Any = JsonlStore.open(self.records, key="key") if self.records else _MemoryStore()
        redact = Redactor(self.api_key)
        targets = [*logging.getLogger().handlers, *log.handlers]
        for h in targets:
            h.addFilter(redact)
        try:
            latest = store.latest()
            self._check_records(latest, items)
            todo = [it for it in items if it.key not in latest or latest[it.key].get("error")]
            done = len(items) - len(todo)
            log.info(
                "llm_judge: %d items, %d judged before, %d to judge", len(items), done, len(todo)
            )
            summary = LabelSummary(total=len(items), already_done=done, out=str(self.records))
            if todo:
                client = self.client or make_client(self.config, self.api_key)
                run = _judge_class()(client, self.config, _Template(self.rubric), store, redact,
                                     rubric=self.rubric)  # fmt: skip
                _run_pool(run, todo, summary, False)
                if summary.fatal:
                    raise TeacherError(f"llm_judge: {summary.fatal}")
            latest = store.latest()
        finally:
            store.close()
            for h in targets:
                h.removeFilter(redact)
        self._info = {
            "judged_before": done,
            "requests": summary.requests,
            "tokens": summary.tokens,
            "retries": summary.retries,
            "stopped": summary.stopped,
            "errors": dict(summary.errors),
            "records": str(self.records) if self.records else None,
        }
        return latest

    def _check_records(self, latest: dict[str, dict[str, Any]], items: list[_Item]) -> None:
        """Refuse a records file written by another judge, or about other texts."""
        mine = {"judge_model": self.config.model, "rubric_hash": self.rubric.hash,
                "temperature": self.config.temperature}  # fmt: skip
        for rec in latest.values():
            other = {k: rec.get(k) for k in _SAME_JUDGE}
            if other != mine:
                diff = ", ".join(f"{k} {other[k]!r} (this run: {mine[k]!r})"
                                 for k in _SAME_JUDGE if other[k] != mine[k])  # fmt: skip
                raise ValueError(
                    f"judge_records: {self.records} holds judgements by another judge ({diff}); "
                    "use another records file (--judge-records) for this judge"
                )
        for it in items:
            rec = latest.get(it.key)
            if rec is not None and rec.get("input_hash") != it.input_hash:
                raise ValueError(
                    f"judge_records: {self.records} holds a judgement of item {it.item!r} of "
                    f"system {it.system!r} on other texts (its generated text, reference or "
                    "context changed); use another records file (--judge-records) for the new "
                    "texts"
                )

    # ------------------------------------------------------------------ reporting

    def run_info(self) -> dict[str, Any]:
        info = dict(self._info)
        info["served_model"] = self.served_model
        return info

    @property
    def served_model(self) -> str:
        return "+".join(sorted(self.served)) or "unknown"

    @property
    def signature(self) -> str:
        c = self.config
        seed = "none" if c.seed is None else c.seed
        return (
            f"llm_judge|model:{c.model}|served:{self.served_model}|rubric:{self.rubric.label}"
            f"|temp:{c.temperature:g}|seed:{seed}|max_tokens:{c.max_tokens}"
            f"|scale:1-5|unparsed:excluded|openai:{_version('openai')}"
        )


register_metric("llm_judge", LLMJudgeMetric, JUDGE_OPTIONS)
