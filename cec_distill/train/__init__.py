"""Supervised fine-tuning of a student with QLoRA: ``[claim; evidence; label] -> explanation``.

One :func:`train` call (``cec-distill train --config run.yaml``):

1. loads the base model (4-bit NF4 + double quantization where the platform can, see
   :mod:`cec_distill.modeling`) and wraps it in a LoRA adapter on the configured (or the
   family's) modules, every name checked against the model (:mod:`~cec_distill.train.adapter`);
2. tokenizes every training instance with the prompt masked (:mod:`cec_distill.formatting`);
3. trains with AdamW and a warm-up schedule; the loss is cross-entropy on the target tokens,
   and with ``rationale_loss: semantic|both`` the PST semantic loss on the rationale
   (:mod:`cec_distill.semantic`);
4. evaluates on the validation split (loss, and CEC of a sample of greedy generations against
   the references) every ``eval_steps`` and at each epoch end, into ``log.jsonl``;
5. checkpoints the trainable weights, optimizer, scheduler and every RNG state every
   ``save_steps``; a new run with the same ``output_dir`` resumes from the newest checkpoint and
   reaches the same state as an uninterrupted run;
6. saves the adapter (``output_dir/adapter``, peft format, plus the projection head and the
   prompt format), and with ``merge: true`` a full-precision merged model.

Multi-GPU: launch with ``torchrun --nproc_per_node 2 -m cec_distill.cli train ...`` or
``accelerate launch``; each process takes its share of every batch and gradients are averaged by
DDP (through accelerate), for the adapter and the projection head alike.

The package, one module per job: :mod:`~cec_distill.train.adapter` (the LoRA target modules,
checked), :mod:`~cec_distill.train.examples` (targets and tokenized examples), :mod:`~cec_distill.train.loss` (cross-entropy and the semantic loss, exact under
DDP), :mod:`~cec_distill.train.validation` (validation loss and CEC during training),
:mod:`~cec_distill.train.checkpoints` (durable checkpoints, resume), :mod:`~cec_distill.train.loop`
(:func:`train`) and :mod:`~cec_distill.train.cli` (``cec-distill train``). The names below stay
importable from ``cec_distill.train``.
"""

from __future__ import annotations

from cec_distill.train.checkpoints import _load_checkpoint as _load_checkpoint
from cec_distill.train.checkpoints import _save_checkpoint as _save_checkpoint
from cec_distill.train.cli import _parse_sets as _parse_sets
from cec_distill.train.cli import train_command
from cec_distill.train.examples import build_examples, targets_for
from cec_distill.train.loop import SUMMARY_FILE, TrainResult, train
from cec_distill.train.loss import _loss as _loss

__all__ = ["train", "TrainResult", "train_command", "targets_for", "build_examples", "SUMMARY_FILE"]
