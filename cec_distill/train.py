"""Supervised fine-tuning of a student with QLoRA: ``[claim; evidence; label] -> explanation``.

One :func:`train` call (``cec-distill train --config run.yaml``):

1. loads the base model (4-bit NF4 + double quantization where the platform can, see
   :mod:`cec_distill.modeling`) and wraps it in a LoRA adapter on the family's modules;
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
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from cec_distill.config import LORA_TARGETS, TrainConfig, load_train_config, to_dict
from cec_distill.data import Instance, load_instances
from cec_distill.formatting import IGNORE_INDEX, Example, collate, encode_example, use_chat_template
from cec_distill.generate import FORMAT_FILE, generate_texts
from cec_distill.modeling import (
    load_base_model,
    load_tokenizer,
    merge_adapter,
    resolve_device,
)
from cec_distill.semantic import ProjectionHead, semantic_loss, target_embeddings

__all__ = ["train", "TrainResult", "train_command", "targets_for", "build_examples", "SUMMARY_FILE"]

log = logging.getLogger("cec_distill.train")
SUMMARY_FILE = "train_summary.json"
_CKPT = "checkpoint-"


@dataclass
class TrainResult:
    """What a finished training run produced.

    Attributes:
        output_dir: The run's directory.
        adapter_dir: The final adapter (peft format).
        steps: Optimizer steps taken in total.
        resumed_from: The checkpoint step this process started from (0: fresh).
        loaded_in_4bit: Whether the base was quantized.
        final_train_loss: Mean training loss of the last logging window.
        eval: The last evaluation record (validation loss, CEC), if any.
        merged_dir: The merged full-precision model, when asked for.
        n_examples, n_dropped, n_truncated: Training examples kept / too long / cut.
        seconds: Wall time of this process's training.
    """

    output_dir: str
    adapter_dir: str
    steps: int
    resumed_from: int
    loaded_in_4bit: bool
    final_train_loss: float | None
    eval: dict | None
    merged_dir: str | None
    n_examples: int
    n_dropped: int
    n_truncated: int
    seconds: float


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def targets_for(
    instances: Sequence[Instance],
    labels_file: str | None,
    reference_index: int = 0,
    truncated: str = "keep",
) -> dict[str, str]:
    """The target explanation of each instance: the teacher's label, else a human explanation.

    Instances without a target are left out (and counted in the log). Teacher labels cut by the
    token limit are kept with a warning, dropped or refused, as ``truncated`` says
    (:func:`cec_distill.data.read_teacher_labels`).
    """
    teacher: dict[str, str] = {}
    if labels_file:
        from cec_distill.data import read_teacher_labels

        labels = read_teacher_labels(
            labels_file, truncated=truncated, ids=[x.id for x in instances]
        )
        teacher = labels.explanations
        if labels.truncated:
            log.warning(
                "%d of %d teacher labels were cut by the token limit (finish_reason length): %s",
                len(labels.truncated),
                len(teacher) + len(labels.dropped),
                "dropped" if labels.dropped else "kept (truncated_labels: drop leaves them out)",
            )
    out = {}
    for inst in instances:
        if inst.id in teacher:
            out[inst.id] = teacher[inst.id]
        elif not labels_file and len(inst.explanations) > reference_index:
            out[inst.id] = inst.explanations[reference_index]
    missing = len(instances) - len(out)
    if missing:
        log.warning(
            "%d of %d instances have no target explanation and are skipped", missing, len(instances)
        )
    return out


def build_examples(
    instances: Sequence[Instance],
    targets: dict[str, str],
    tokenizer: Any,
    cfg: TrainConfig,
    chat: bool,
    max_length: int,
) -> tuple[list[Example], list[str], int, int]:
    """Tokenized examples, their target texts, and the counts dropped (too long) and truncated."""
    examples, texts, dropped, truncated = [], [], 0, 0
    for inst in instances:
        if inst.id not in targets:
            continue
        ex = encode_example(
            inst, targets[inst.id], tokenizer, cfg.format, chat=chat, max_length=max_length
        )
        if ex is None:
            dropped += 1
            continue
        truncated += ex.truncated
        examples.append(ex)
        texts.append(targets[inst.id])
    return examples, texts, dropped, truncated


def _model_max_length(model: Any, tokenizer: Any) -> int:
    n = getattr(model.config, "max_position_embeddings", None) or 2048
    t = getattr(tokenizer, "model_max_length", None)
    if isinstance(t, int) and 0 < t < 10**6:
        n = min(n, t)
    return int(n)


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------
def _trainable_state(model: Any, head: ProjectionHead | None) -> dict[str, torch.Tensor]:
    state = {
        f"model.{n}": p.detach().cpu().contiguous()
        for n, p in model.named_parameters()
        if p.requires_grad
    }
    if head is not None:
        state.update(
            {f"head.{n}": p.detach().cpu().contiguous() for n, p in head.state_dict().items()}
        )
    return state


def _rng_state() -> dict[str, Any]:
    import numpy as np

    st = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    import numpy as np

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    root = output_dir / "checkpoints"
    out = []
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith(_CKPT) and (d / "state.json").is_file():
                out.append((int(d.name[len(_CKPT) :]), d))
    return sorted(out)


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk; folders where the OS allows it."""
    flags = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:  # folders cannot be opened on Windows; their entries are flushed by NTFS
        if path.is_dir():
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_checkpoint(
    output_dir: Path, step: int, model, head, opt, sched, state: dict, limit: int
) -> Path:
    from safetensors.torch import save_file

    root = output_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{_CKPT}{step:07d}"
    tmp = root / f".tmp-{_CKPT}{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_trainable_state(model, head), str(tmp / "trainable.safetensors"))
    torch.save(opt.state_dict(), tmp / "optimizer.pt")
    torch.save(sched.state_dict(), tmp / "scheduler.pt")
    torch.save(_rng_state(), tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    for f in sorted(tmp.iterdir()):  # the data on disk before the name says it is complete
        _fsync(f)
    _fsync(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)  # a checkpoint exists only once complete
    _fsync(root)  # and the rename itself survives a power loss
    for _, old in _checkpoints(output_dir)[:-limit]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _load_checkpoint(path: Path, model, head, opt, sched) -> dict:
    from safetensors.torch import load_file

    saved = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, v in saved.items():
            if k.startswith("model."):
                params[k[6:]].copy_(v)
    if head is not None:
        head.load_state_dict({k[5:]: v for k, v in saved.items() if k.startswith("head.")})
    opt.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    sched.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    _set_rng_state(torch.load(path / "rng.pt", weights_only=False))
    return json.loads((path / "state.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# loss and evaluation
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
def train(
    cfg: TrainConfig,
    *,
    scorer: Any = None,
    kill_after_step: int | None = None,
    dump_rank_state: str | os.PathLike | None = None,
) -> TrainResult:
    """Fine-tune a student as configured; resumes from the newest checkpoint in ``output_dir``.

    Args:
        cfg: The configuration (:func:`cec_distill.config.load_train_config`).
        scorer: A :class:`cec.CEC` for evaluation and semantic targets (default: built lazily
            when needed).
        kill_after_step: Testing aid: ``SIGKILL`` this process right after the checkpoint of
            that step is written (a real crash at a known point).
        dump_rank_state: Testing aid for multi-process runs: every process writes its final
            trainable weights (``rank-N.safetensors``) and its log records (``rank-N.json``)
            into this folder, so the ranks can be compared.

    Returns:
        A :class:`TrainResult`. ``output_dir/train_summary.json`` marks a finished run.
    """
    from accelerate import Accelerator
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import get_scheduler, set_seed

    t_start = time.perf_counter()
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    accel = Accelerator(cpu=device.type == "cpu", gradient_accumulation_steps=1)
    world, rank = accel.num_processes, accel.process_index
    main = accel.is_main_process
    set_seed(cfg.seed)

    train_inst = load_instances(cfg.train_file)
    val_inst = load_instances(cfg.validation_file) if cfg.validation_file else []
    tokenizer = load_tokenizer(cfg.model)
    model, used_4bit = load_base_model(cfg.model, cfg.quantization, device, training=True)
    chat = use_chat_template(tokenizer, cfg.model.chat_template)
    max_length = cfg.max_length or _model_max_length(model, tokenizer)

    # --- adapter
    family = getattr(model.config, "model_type", "")
    targets = cfg.lora.target_modules or LORA_TARGETS.get(family)
    if not targets:
        raise ValueError(
            f"no default LoRA target modules for model family {family!r}; set lora.target_modules"
        )
    if used_4bit:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=cfg.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=targets,
        bias=cfg.lora.bias,
        task_type="CAUSAL_LM",
    )
    set_seed(cfg.seed)  # adapter initialisation depends on the seed only, not on what loading drew
    model = get_peft_model(model, lora)

    # --- data
    train_targets = targets_for(
        train_inst, cfg.labels_file, cfg.reference_index, cfg.truncated_labels
    )
    examples, texts, dropped, truncated = build_examples(
        train_inst, train_targets, tokenizer, cfg, chat, max_length
    )
    if not examples:
        raise ValueError(
            f"train_file {cfg.train_file}: no usable training example (targets, max_length?)"
        )
    val_targets = (
        targets_for(val_inst, cfg.labels_file, cfg.reference_index, cfg.truncated_labels)
        if val_inst
        else {}
    )
    val_refs = {  # CEC references: every human explanation, or the teacher's
        x.id: list(x.explanations)
        if x.explanations and not cfg.labels_file
        else [val_targets[x.id]]
        for x in val_inst
        if x.id in val_targets
    }
    val_examples, val_texts, _, _ = build_examples(
        val_inst, val_targets, tokenizer, cfg, chat, max_length
    )

    # --- semantic head and frozen targets
    head = None
    sem_train = sem_val = None
    need_scorer = cfg.rationale_loss != "token" or (cfg.eval_generate_n > 0 and val_inst)
    if need_scorer and scorer is None:
        import cec

        scorer = cec.CEC(
            cfg.semantic_encoder, device=str(device) if device.type == "cuda" else "cpu"
        )
    if cfg.rationale_loss != "token":
        cache = out_dir / "semantic_targets.safetensors"
        key = getattr(scorer.encoder, "key", "")
        sem_train = target_embeddings(texts, scorer.encode, cache, key)
        sem_val = target_embeddings(val_texts, scorer.encode, cache, key) if val_texts else None
        torch.manual_seed(cfg.seed + 1)
        head = ProjectionHead(
            model.config.hidden_size, sem_train.shape[1], cfg.projection_hidden
        ).to(device)

    # --- optimizer and schedule
    params = [p for p in model.parameters() if p.requires_grad]
    if head is not None:
        params += list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    global_bs = cfg.batch_size * world
    micro_per_epoch = math.ceil(len(examples) / global_bs)
    steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
    total = cfg.max_steps or steps_per_epoch * cfg.epochs
    sched = get_scheduler(
        cfg.lr_scheduler,
        opt,
        num_warmup_steps=int(round(cfg.warmup_ratio * total)),
        num_training_steps=total,
    )
    if world > 1:  # DDP: gradients of the adapter and of the projection head averaged
        if head is not None:
            model, head, opt = accel.prepare(model, head, opt)
        else:
            model, opt = accel.prepare(model, opt)

    def plain(m):
        return accel.unwrap_model(m) if m is not None else None

    # --- resume
    step, resumed_from = 0, 0
    history: list[dict] = []
    ckpts = _checkpoints(out_dir)
    if ckpts:
        resumed_from, path = ckpts[-1]
        state = _load_checkpoint(path, plain(model), plain(head), opt, sched)
        step = state["step"]
        history = state.get("history", [])
        log.info("resumed from %s (step %d of %d)", path, step, total)
    if main:
        _write_config(out_dir, cfg, used_4bit, max_length)
        log.info(
            "training %d examples (%d too long dropped, %d truncated), %d steps/epoch, %d steps, "
            "4-bit=%s, world=%d, max_length=%d, rationale_loss=%s, order=%s",
            len(examples),
            dropped,
            truncated,
            steps_per_epoch,
            total,
            used_4bit,
            world,
            max_length,
            cfg.rationale_loss,
            cfg.format.order,
        )
    log_path = out_dir / "log.jsonl"
    if main and resumed_from:  # drop records written after the checkpoint by the killed run
        log_path.write_text("".join(json.dumps(h) + "\n" for h in history), encoding="utf-8")

    def log_rec(rec: dict) -> None:
        history.append(rec)
        if main:
            with log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec) + "\n")

    model.train()
    window: list[float] = []
    last_eval = next((h for h in reversed(history) if "val_loss" in h or "val_cec" in h), None)
    while step < total:
        epoch = step // steps_per_epoch
        perm = torch.randperm(
            len(examples), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        ).tolist()
        micro = (step % steps_per_epoch) * cfg.grad_accum
        while micro < micro_per_epoch and step < total:
            group = range(micro, min(micro + cfg.grad_accum, micro_per_epoch))
            parts_acc: dict[str, float] = {}
            for m in group:
                share = perm[m * global_bs : (m + 1) * global_bs]
                idx, weight = share[rank::world], 1.0
                if not idx:  # an empty share of the last micro-batch still joins the all-reduce
                    idx, weight = share[:1], 0.0
                batch = {
                    k: v.to(device)
                    for k, v in collate([examples[i] for i in idx], tokenizer.pad_token_id).items()
                }
                tsem = sem_train[idx].to(device) if sem_train is not None else None
                loss, parts = _global_loss(model, head, batch, tsem, cfg, accel, weight)
                accel.backward(loss / len(group))
                for k, v in parts.items():
                    parts_acc[k] = parts_acc.get(k, 0.0) + v / len(group)
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            micro += len(group)
            step += 1
            window.append(parts_acc.get("loss", float("nan")))
            end_of_epoch = micro >= micro_per_epoch
            if step % cfg.logging_steps == 0 or step == total:
                log_rec(
                    {
                        "step": step,
                        "epoch": step / steps_per_epoch,
                        "lr": sched.get_last_lr()[0],
                        "train_loss": sum(window) / len(window),
                        "elapsed_s": round(time.perf_counter() - t_start, 1),
                        **{f"train_{k}": v for k, v in parts_acc.items() if k != "loss"},
                    }
                )
                window = []
            due = (cfg.eval_steps and step % cfg.eval_steps == 0) or end_of_epoch or step == total
            if due and val_inst:
                ev = _evaluate(
                    plain(model),
                    plain(head),
                    tokenizer,
                    cfg,
                    chat,
                    val_examples,
                    sem_val,
                    val_inst,
                    val_refs,
                    scorer,
                    device,
                )
                last_eval = {"step": step, "epoch": step / steps_per_epoch, **ev}
                log_rec(last_eval)
                log.info("eval step %d: %s", step, ev)
            if (cfg.save_steps and step % cfg.save_steps == 0) or end_of_epoch or step == total:
                if main:
                    _save_checkpoint(
                        out_dir,
                        step,
                        plain(model),
                        plain(head),
                        opt,
                        sched,
                        {"step": step, "total": total, "history": history},
                        cfg.save_total_limit,
                    )
                accel.wait_for_everyone()
                if kill_after_step is not None and step >= kill_after_step:
                    os.kill(os.getpid(), signal.SIGKILL)

    # --- final artefacts
    adapter_dir = out_dir / "adapter"
    merged_dir = None
    if main:
        unwrapped = accel.unwrap_model(model)
        unwrapped.save_pretrained(str(adapter_dir))
        tokenizer.save_pretrained(str(adapter_dir))
        (adapter_dir / FORMAT_FILE).write_text(
            json.dumps(asdict(cfg.format), indent=2) + "\n", encoding="utf-8"
        )
        if head is not None:
            plain(head).save(adapter_dir)
        if cfg.merge:
            merged_dir = str(merge_adapter(cfg.model, adapter_dir, out_dir / "merged"))
    if dump_rank_state is not None:  # every process: its own weights and losses
        from safetensors.torch import save_file

        d = Path(dump_rank_state)
        d.mkdir(parents=True, exist_ok=True)
        save_file(_trainable_state(plain(model), plain(head)), str(d / f"rank-{rank}.safetensors"))
        (d / f"rank-{rank}.json").write_text(json.dumps(history) + "\n", encoding="utf-8")
    train_losses = [h["train_loss"] for h in history if "train_loss" in h]
    result = TrainResult(
        output_dir=str(out_dir),
        adapter_dir=str(adapter_dir),
        steps=step,
        resumed_from=resumed_from,
        loaded_in_4bit=used_4bit,
        final_train_loss=train_losses[-1] if train_losses else None,
        eval=last_eval,
        merged_dir=merged_dir,
        n_examples=len(examples),
        n_dropped=dropped,
        n_truncated=truncated,
        seconds=time.perf_counter() - t_start,
    )
    if main:
        (out_dir / SUMMARY_FILE).write_text(
            json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8"
        )
    return result


def _write_config(out_dir: Path, cfg: TrainConfig, used_4bit: bool, max_length: int) -> None:
    import yaml

    data = to_dict(cfg)
    data["_resolved"] = {"loaded_in_4bit": used_4bit, "max_length": max_length}
    (out_dir / "train_config.yaml").write_text(
        yaml.safe_dump(data, sort_keys=False), encoding="utf-8"
    )


def _parse_sets(sets: list[str] | None) -> dict:
    import yaml

    out: dict = {}
    for s in sets or []:
        if "=" not in s:
            raise typer.BadParameter(f"--set expects KEY=VALUE, got {s!r}", param_hint="--set")
        key, val = s.split("=", 1)
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(val)
    return out


def train_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Training YAML (see docs/training.md).")
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key, e.g. --set learning_rate=2e-4 --set lora.r=8."),
    ] = None,
    kill_after_step: Annotated[
        int | None,
        typer.Option(hidden=True, help="Testing aid: SIGKILL after this step's checkpoint."),
    ] = None,
    dump_rank_state: Annotated[
        Path | None,
        typer.Option(hidden=True, help="Testing aid: each process writes its weights here."),
    ] = None,
) -> None:
    """Fine-tune a student (QLoRA) on claim + evidence + label -> explanation; resumes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = load_train_config(config, _parse_sets(set_))
    res = train(cfg, kill_after_step=kill_after_step, dump_rank_state=dump_rank_state)
    typer.echo(json.dumps(asdict(res), indent=2))
