"""The training loop: one :func:`train` call from a config to a saved adapter (see the package)."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from cec.cache import EmbeddingCache
from cec_distill.config import TrainConfig, to_dict
from cec_distill.data import load_instances
from cec_distill.formatting import collate, use_chat_template
from cec_distill.generate import FORMAT_FILE
from cec_distill.modeling import load_base_model, load_tokenizer, merge_adapter, resolve_device
from cec_distill.semantic import ProjectionHead, target_embeddings
from cec_distill.train.adapter import lora_targets
from cec_distill.train.checkpoints import (
    _checkpoints,
    _load_checkpoint,
    _save_checkpoint,
    _trainable_state,
)
from cec_distill.train.examples import _model_max_length, build_examples, targets_for
from cec_distill.train.loss import _global_loss
from cec_distill.train.validation import _evaluate

__all__ = ["train", "TrainResult", "SUMMARY_FILE"]

log = logging.getLogger("cec_distill.train")
SUMMARY_FILE = "train_summary.json"


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

    # --- adapter: every target name must match a module (peft skips unmatched ones silently)
    targets = lora_targets(model, cfg.lora.target_modules)
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
        cache = _semantic_cache(scorer, out_dir)
        sem_train = target_embeddings(texts, scorer, cache)
        sem_val = target_embeddings(val_texts, scorer, cache) if val_texts else None
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


#: The embedding cache of the semantic targets when the scorer has no persistent cache of its own.
SEMANTIC_CACHE_FILE = "semantic_targets.sqlite"


def _semantic_cache(scorer: Any, out_dir: Path) -> EmbeddingCache | Path | None:
    """Where the frozen rationale embeddings are read from and written to: the scorer's own
    cache when it keeps vectors across runs, else ``output_dir/semantic_targets.sqlite`` (a
    resumed or repeated run reads them back); an anonymous encoder gets only the scorer's
    in-process cache, if any (its vectors must not outlive it)."""
    own = getattr(scorer, "cache", None)
    if own is not None and own.persistent:
        return own
    if scorer.encoder.anonymous:
        return own
    return out_dir / SEMANTIC_CACHE_FILE


def _write_config(out_dir: Path, cfg: TrainConfig, used_4bit: bool, max_length: int) -> None:
    import yaml

    data = to_dict(cfg)
    data["_resolved"] = {"loaded_in_4bit": used_4bit, "max_length": max_length}
    (out_dir / "train_config.yaml").write_text(
        yaml.safe_dump(data, sort_keys=False), encoding="utf-8"
    )
