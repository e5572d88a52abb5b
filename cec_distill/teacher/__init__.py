"""Teacher labelling: instance -> prompt -> explanation from any OpenAI-compatible endpoint.

The guarantee is **at-least-once requests, exactly-once records**: every answer that arrives is
kept, each labelled id gets exactly one label record, but a request can be paid for more than
once. What that means in practice:

* Each finished request is appended to an fsync'd JSONL :class:`~cec_distill.store.JsonlStore`
  before it counts as done; a re-run with the same output skips ids whose latest record is a
  label, so a run interrupted by Ctrl-C, ``kill -9`` or power loss loses at most the requests in
  flight (which the server may have billed: they are sent again by the next run).
* Retries with exponential backoff and full jitter on 429, 5xx, timeouts, dropped connections and
  malformed or empty answers; ``Retry-After`` (and ``retry-after-ms``) is honoured. A timeout or
  a dropped connection may come *after* the server did (and billed) the work: the retry is paid
  again. The ``openai`` client's own retries are off (``max_retries=0``), so this loop alone
  decides.
* A content-filtered answer (``finish_reason: "content_filter"``, or a 400 whose code is
  ``content_filter``) is recorded once as *refused* and never retried, neither in this run nor by
  the next one (unless ``retry_refused``).
* An answer cut by the token limit (``finish_reason: "length"``) is flagged ``"truncated": true``
  and counted; ``on_length`` keeps it (default, with a warning), asks again with a doubled limit
  (``retry-longer``) or records it as failed (``fail``).
* The server's own error text (JSON ``error.message`` or ``detail``, else the start of the body,
  with anything that looks like a key redacted) is kept in the record, the log and the summary.
* When the first requests of a run all fail with the same client error (a 400/422 such as an
  unknown model name or a bad parameter), the run stops as fatal without writing records for
  them (as it does at once on 401, 403 and 404): the error is about the run, not the items.
  A client error about one item (a content filter, a context-length error on one long prompt)
  is recorded for that item.
* A budget (requests sent, total tokens) stops the run cleanly: no new request starts, the
  requests in flight finish and are written, the run exits 0 saying the budget stopped it.
* A failed item is written with its error (``"error"`` field) and retried by the next run.
* The API key is read from an environment variable only, never printed, logged or stored; any
  text that could carry it (error messages, logs) passes through :class:`Redactor`.

Python use::

    from cec_distill.data import load_climate_fever
    from cec_distill.teacher import TeacherConfig, label_instances
    summary = label_instances(load_climate_fever("climate-fever.jsonl"), "labels.jsonl",
                              TeacherConfig(model="gpt-4"))
"""

from __future__ import annotations

from cec_distill.teacher.cli import label_command
from cec_distill.teacher.client import LOCAL_PLACEHOLDER_KEY, make_client
from cec_distill.teacher.config import ON_LENGTH, Budget, RetryPolicy, TeacherConfig

# one module per job: errors (classification, server messages), redact (keys), config
# (configuration, retry, budget), client, labeller (one item), runner (a run), cli
from cec_distill.teacher.errors import MissingAPIKeyError, TeacherError, server_message
from cec_distill.teacher.redact import Redactor, redact_keylike
from cec_distill.teacher.runner import LabelSummary, label_instances

__all__ = [
    "TeacherConfig",
    "RetryPolicy",
    "Budget",
    "Redactor",
    "LabelSummary",
    "TeacherError",
    "MissingAPIKeyError",
    "make_client",
    "label_instances",
    "label_command",
    "LOCAL_PLACEHOLDER_KEY",
    "ON_LENGTH",
    "server_message",
    "redact_keylike",
]
