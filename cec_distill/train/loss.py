"""The training loss: token cross-entropy on the targets (+ the PST semantic loss on the rationale).

Losses are summed per process first and divided by the counts of all processes, so that DDP's
averaged gradients equal one process's gradients on the whole batch.
"""

from __future__ import annotations

import torch

from cec_distill.config import TrainConfig
from cec_distill.formatting import IGNORE_INDEX
from cec_distill.semantic import semantic_loss


def _loss_sums(
    model, head, batch: dict, sem_targets: torch.Tensor | None, cfg: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed terms of the loss: ``(ce_sum, n_tokens, semantic_sum, n_rationales)``.

    Sums, not means, so that several processes (or micro-batches) can be averaged over their
    total token and rationale counts exactly as one process would over the whole batch.
    """
    need_hidden = head is not None
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        output_hidden_states=need_hidden,
        use_cache=False,
    )
    labels = batch["labels"]
    ce_labels = labels
    if cfg.rationale_loss == "semantic":  # the rationale is learned in embedding space only
        ce_labels = labels.masked_fill(batch["rationale_mask"].bool(), IGNORE_INDEX)
    logits = out.logits[:, :-1].float()
    tgt = ce_labels[:, 1:]
    n_tok = (tgt != IGNORE_INDEX).sum().float()
    ce_sum = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        tgt.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    sem_sum = n_sem = logits.new_zeros(())
    if head is not None:
        # hidden state at position t predicts token t+1: pool the states that predict rationale tokens
        rmask = torch.zeros_like(batch["rationale_mask"])
        rmask[:, :-1] = batch["rationale_mask"][:, 1:]
        pred = head(out.hidden_states[-1], rmask)
        valid = rmask.sum(1) > 0
        sem_sum = semantic_loss(pred, sem_targets, valid, reduction="sum")
        n_sem = valid.sum().float()
    return ce_sum, n_tok, sem_sum, n_sem


def _combine(
    ce: torch.Tensor, n_tok: torch.Tensor, sem: torch.Tensor, n_sem: torch.Tensor, cfg, head
) -> tuple[torch.Tensor, dict]:
    """Token-mean cross-entropy (+ weighted rationale-mean semantic loss) and its logged parts."""
    ce_mean = ce / n_tok.clamp(min=1.0)
    loss = ce_mean
    parts: dict[str, float] = {"ce": float(ce_mean.detach())}
    if head is not None:
        sem_mean = sem / n_sem.clamp(min=1.0)
        parts["semantic"] = float(sem_mean.detach())
        loss = loss + cfg.semantic_weight * sem_mean
    parts["loss"] = float(loss.detach())
    return loss, parts


def _loss(
    model, head, batch: dict, sem_targets: torch.Tensor | None, cfg: TrainConfig
) -> tuple[torch.Tensor, dict]:
    """The loss of one batch on one process: mean cross-entropy over the target tokens
    (+ ``semantic_weight`` x the mean semantic loss over the rationales), and its parts."""
    return _combine(*_loss_sums(model, head, batch, sem_targets, cfg), cfg, head)


def _global_loss(
    model, head, batch: dict, sem_targets, cfg: TrainConfig, accel, weight: float
) -> tuple[torch.Tensor, dict]:
    """This process's share of the loss of a batch split over all processes.

    The token and rationale counts are summed over the processes first, so that after DDP
    averages the gradients (a division by the number of processes) they equal the gradients of
    one process on the whole batch. ``weight`` 0 is a process whose share is empty: it runs
    forward and backward on a stand-in example with a zero loss, so every process takes part in
    the gradient all-reduce. The logged parts are the whole batch's, the same on every process.
    """
    ce, n_tok, sem, n_sem = _loss_sums(model, head, batch, sem_targets, cfg)
    world = accel.num_processes
    local = torch.stack([ce.detach(), n_tok, sem.detach(), n_sem]) * weight
    if world > 1:
        local = accel.reduce(local, reduction="sum")
    g_ce, g_tok, g_sem, g_nsem = local.unbind()
    loss = (ce * weight) / g_tok.clamp(min=1.0)
    if head is not None:
        loss = loss + cfg.semantic_weight * (sem * weight) / g_nsem.clamp(min=1.0)
    _, parts = _combine(g_ce, g_tok, g_sem, g_nsem, cfg, head)
    return loss * world, parts
