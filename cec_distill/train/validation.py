"""Validation during training: the loss on the validation split and CEC of sampled generations."""

from __future__ import annotations

from typing import Any

import torch

from cec_distill.formatting import collate
from cec_distill.generate import generate_texts
from cec_distill.train.checkpoints import _rng_state, _set_rng_state
from cec_distill.train.loss import _loss


@torch.no_grad()
def _evaluate(
    model, head, tokenizer, cfg, chat, val_examples, val_sem, val_instances, refs, scorer, device
) -> dict:
    was = model.training
    model.eval()
    rng = _rng_state()
    rec: dict[str, Any] = {}
    try:
        if val_examples:
            tot, n = 0.0, 0
            for s in range(0, len(val_examples), cfg.batch_size):
                chunk = val_examples[s : s + cfg.batch_size]
                b = {k: v.to(device) for k, v in collate(chunk, tokenizer.pad_token_id).items()}
                tsem = val_sem[s : s + cfg.batch_size] if val_sem is not None else None
                _, parts = _loss(model, head, b, tsem, cfg)
                tot += parts["loss"] * len(chunk)
                n += len(chunk)
            rec["val_loss"] = tot / n
        if cfg.eval_generate_n and val_instances and scorer is not None:
            sample = [x for x in val_instances if x.id in refs][: cfg.eval_generate_n]
            gens = generate_texts(
                model,
                tokenizer,
                sample,
                cfg.format,
                chat=chat,
                batch_size=cfg.batch_size,
                max_new_tokens=cfg.eval_max_new_tokens,
            )
            res = scorer.score([g["explanation"] for g in gens], [refs[x.id] for x in sample])
            rec["val_cec"] = float(res.mean)
            rec["val_cec_n"] = len(sample)
            rec["cec_signature"] = str(res.signature)
    finally:
        _set_rng_state(rng)
        model.train(was)
    return rec
