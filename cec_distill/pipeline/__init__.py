"""The whole study in one resumable run: data -> label -> train -> generate -> evaluate -> stats -> report.

``cec-distill run --config study.yaml`` creates one directory per run (``run_dir``)::

    config.yaml                 the study config as run (resolved)
    pipeline.log                every stage's log
    status.json                 stage -> done / skipped, seconds
    data/{train,validation,test}.jsonl
    labels/teacher.jsonl        teacher explanations (only when the data has no references)
    base_model/                 the base written once as safetensors (GGUF or package sources)
    train/                      checkpoints, adapter/, log.jsonl, train_summary.json
    generations/{before,after}.jsonl   the base model's and the fine-tuned student's outputs
    results/{before,after}.json        per-item and corpus scores, one signature per metric
    results/stats.json          before-vs-after tests per metric, CEC-vs-BERTScore comparison
    report/report.md            Table 1 style report (+ table1.md/.csv/.tex, plots)

Every stage is skipped when its output exists and is complete, so re-running the same command
after an interruption continues where it stopped (training resumes from its last checkpoint,
generation from its last written record).

A stage is reused only if it was made from the same inputs. Before a stage runs, its
*fingerprint* is recorded in ``status.json``: its config section (resolved: presets expanded,
paths inside ``run_dir`` left out), the content hashes of the upstream outputs it reads (and of
the source data) and the code version (``cec.__version__``). When a later run finds the stage's
outputs (complete or partial) under a different fingerprint, it stops with a
:class:`StaleStageError` that names the stage and what changed (``student.learning_rate: 0.01 ->
0.02``, ``data/train.jsonl changed``) before anything is recomputed or overwritten.
``force=True`` (``--force``) redoes every stale stage (and so whatever its new outputs change
downstream); ``from_stage="train"`` (``--from train``) redoes that stage and every later one
(the baseline's generations, which do not depend on training, are kept; ``--from generate``
redoes both generations).
A stage is redone by removing its outputs first (teacher labels, which cost money, are moved
aside to ``labels/teacher.jsonl.stale-<time>`` instead).

Study config keys (YAML):

``run_dir``
    Output directory.
``seed``
    Seeds the item selection (``data.seed`` overrides) and the statistics.
``data``
    ``path`` (anything :func:`cec_distill.data.load_instances` reads), ``n_train``,
    ``n_validation``, ``n_test`` (items drawn by a seeded hash order, disjoint), or
    ``fractions`` (a stratified :func:`cec_distill.data.split`) when the counts are absent.
``teacher``
    A :class:`cec_distill.teacher.TeacherConfig` mapping (plus ``template``); used only when the
    instances have no reference explanations.
``student``
    A training config (:class:`cec_distill.config.TrainConfig`, ``preset`` allowed) without
    ``train_file``/``validation_file``/``output_dir``; ``materialize: false`` keeps loading the
    base from its source each time.
``generate``
    :class:`cec_distill.config.GenerateConfig` settings (batch size, length, sampling, seed).
``evaluate``
    ``metrics`` (default: the paper's seven) and options for :func:`cec_distill.metrics.evaluate`.
``stats``
    ``k`` (items in the CEC-vs-BERTScore comparison, default 100 or all), ``n_resamples``.
``baseline``

The package, one module per job: :mod:`~cec_distill.pipeline.config` (the study config),
:mod:`~cec_distill.pipeline.status` (``status.json``, fingerprints, stale outputs),
:mod:`~cec_distill.pipeline.stages` (one function per stage), :mod:`~cec_distill.pipeline.report`
(the report stage), :mod:`~cec_distill.pipeline.runner` (:func:`run`) and
:mod:`~cec_distill.pipeline.cli` (``cec-distill run``). The names below stay importable from
``cec_distill.pipeline``.
"""

from __future__ import annotations

from cec_distill.pipeline.cli import run_command
from cec_distill.pipeline.config import STAGES, load_study_config
from cec_distill.pipeline.runner import run
from cec_distill.pipeline.stages import _references as _references
from cec_distill.pipeline.status import StaleStageError

__all__ = ["run", "run_command", "load_study_config", "STAGES", "StaleStageError"]
