"""Batched, seeded generation of student explanations into a resumable JSONL file.

:func:`generate_texts` is the in-memory core (also used for evaluation during training);
:func:`generate` loads a base model plus an optional LoRA adapter and appends one record per
instance to an append-only store (:class:`cec_distill.store.JsonlStore`), skipping ids already
done, so a killed run resumes where it stopped. Each record holds ``id``, ``explanation`` (the
rationale, parsed), ``answer`` (the predicted label when the student gives one), ``raw`` (the
whole generation), ``finish`` (``eos``, ``length`` or ``answer``) and the settings.

Determinism: greedy decoding is deterministic. Sampling seeds torch from ``seed`` and the ids of
the batch, so the same inputs, batch size and settings give the same text on the same hardware.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from cec_distill.config import FormatConfig, GenerateConfig, load_generate_config
from cec_distill.data import Instance, load_instances
from cec_distill.formatting import answer_complete, parse_output, prompt_ids, use_chat_template

__all__ = ["generate_texts", "generate", "generate_command", "read_format", "FORMAT_FILE"]

log = logging.getLogger("cec_distill.generate")
FORMAT_FILE = "cec_format.json"


class _StopAfterAnswer:
    """Stopping criterion: a row is done once its new text holds a whole ``Answer:`` line."""

    def __init__(self, tokenizer: Any, n_prompt: int):
        self.tokenizer, self.n_prompt = tokenizer, n_prompt

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kw: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.n_prompt :], skip_special_tokens=True)
        return torch.tensor([answer_complete(t) for t in texts], device=input_ids.device)


def _batch_seed(seed: int, ids: Sequence[str]) -> int:
    h = hashlib.sha256(("\x00".join([str(seed), *ids])).encode()).digest()
    return int.from_bytes(h[:8], "little") % (2**63)


@torch.no_grad()
def generate_texts(
    model: Any,
    tokenizer: Any,
    instances: Sequence[Instance],
    fmt: FormatConfig,
    *,
    chat: bool,
    batch_size: int = 8,
    max_new_tokens: int = 128,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    stop_after_answer: bool = False,
    max_prompt_length: int | None = None,
) -> list[dict[str, Any]]:
    """Generate for ``instances`` in batches; one dict per instance, in order.

    Prompts are left-padded; decoding stops at the tokenizer's EOS (and the model's generation
    config EOS ids), after ``max_new_tokens``, or after the answer line with
    ``stop_after_answer``.
    """
    from transformers import StoppingCriteriaList

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id
    eos_ids = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if gen_eos is not None:
        eos_ids |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    eos_ids.discard(None)
    out: list[dict[str, Any]] = []
    try:
        for start in range(0, len(instances), batch_size):
            batch = list(instances[start : start + batch_size])
            prompts = [prompt_ids(x, tokenizer, fmt, chat) for x in batch]
            if max_prompt_length:
                prompts = [p[-max_prompt_length:] for p in prompts]
            n = max(len(p) for p in prompts)
            ids = torch.full((len(batch), n), pad, dtype=torch.long)
            att = torch.zeros((len(batch), n), dtype=torch.long)
            for i, p in enumerate(prompts):
                ids[i, n - len(p) :] = torch.tensor(p)
                att[i, n - len(p) :] = 1
            kw: dict[str, Any] = {
                "max_new_tokens": max_new_tokens,
                "do_sample": do_sample,
                "pad_token_id": pad,
                "eos_token_id": sorted(eos_ids),
            }
            if do_sample:
                kw.update(temperature=temperature, top_p=top_p, top_k=top_k)
                torch.manual_seed(_batch_seed(seed, [x.id for x in batch]))
            else:
                kw.update(temperature=None, top_p=None, top_k=None)
            if stop_after_answer:
                kw["stopping_criteria"] = StoppingCriteriaList([_StopAfterAnswer(tokenizer, n)])
            seqs = model.generate(input_ids=ids.to(device), attention_mask=att.to(device), **kw)
            new = seqs[:, n:].cpu()
            for inst, row in zip(batch, new, strict=True):
                toks = row.tolist()
                ended = next((j for j, t in enumerate(toks) if t in eos_ids), None)
                kept = toks if ended is None else toks[:ended]
                raw = tokenizer.decode(kept, skip_special_tokens=True)
                answer, expl = parse_output(raw, fmt)
                if ended is not None:
                    finish = "eos"
                elif stop_after_answer and answer_complete(raw):
                    finish = "answer"
                else:
                    finish = "length"
                out.append(
                    {
                        "id": inst.id,
                        "explanation": expl,
                        "answer": answer,
                        "raw": raw,
                        "finish": finish,
                        "n_new_tokens": len(kept),
                    }
                )
    finally:
        model.train(was_training)
    return out


def read_format(adapter_dir: str | os.PathLike | None) -> FormatConfig | None:
    """The prompt format an adapter was trained with (``None`` when not recorded)."""
    import json

    if adapter_dir is None:
        return None
    p = Path(adapter_dir) / FORMAT_FILE
    if not p.is_file():
        return None
    return FormatConfig(**json.loads(p.read_text(encoding="utf-8")))


def generate(
    config: GenerateConfig,
    instances: Sequence[Instance] | None = None,
    *,
    model: Any = None,
    tokenizer: Any = None,
) -> Path:
    """Generate explanations for every instance not yet in ``config.output_file``.

    Args:
        config: Settings.
        instances: The instances (default: read ``config.input_file``).
        model, tokenizer: Already loaded ones (skips loading; the adapter must be applied).

    Returns:
        The output path. Records are appended and fsync'd one batch at a time.
    """
    from cec_distill.modeling import load_base_model, load_tokenizer, resolve_device
    from cec_distill.store import JsonlStore

    if instances is None:
        instances = load_instances(config.input_file)
    if config.limit is not None:
        instances = list(instances)[: config.limit]
    fmt = config.format or read_format(config.adapter) or FormatConfig()
    out_path = Path(config.output_file)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with JsonlStore.open(out_path) as store:
        done = store.done_ids()
        todo = [x for x in instances if x.id not in done]
        if not todo:
            log.info("generate: all %d instances already in %s", len(instances), out_path)
            return out_path
        device = resolve_device(config.device)
        if tokenizer is None:
            tokenizer = load_tokenizer(config.model, padding_side="left")
        if model is None:
            model, _ = load_base_model(config.model, config.quantization, device)
            if config.adapter:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, config.adapter)
        chat = use_chat_template(tokenizer, config.model.chat_template)
        meta = {
            "model": config.model.name_or_path or config.model.package,
            "adapter": config.adapter,
            "seed": config.seed,
            "do_sample": config.do_sample,
            "max_new_tokens": config.max_new_tokens,
            "order": fmt.order,
        }
        log.info("generate: %d to do, %d already done -> %s", len(todo), len(done), out_path)
        t0 = time.perf_counter()
        for start in range(0, len(todo), config.batch_size):
            batch = todo[start : start + config.batch_size]
            recs = generate_texts(
                model,
                tokenizer,
                batch,
                fmt,
                chat=chat,
                batch_size=config.batch_size,
                max_new_tokens=config.max_new_tokens,
                do_sample=config.do_sample,
                temperature=config.temperature,
                top_p=config.top_p,
                top_k=config.top_k,
                seed=config.seed,
                stop_after_answer=config.stop_after_answer,
                max_prompt_length=config.max_prompt_length,
            )
            for r in recs:
                store.append({**r, **meta})
            log.info(
                "generate: %d/%d (%.1fs)", start + len(batch), len(todo), time.perf_counter() - t0
            )
    return out_path


def generate_command(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Generation YAML.")] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="Instances to explain.")
    ] = None,
    output_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="JSONL to append to.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Base model id or directory.")] = None,
    adapter: Annotated[Path | None, typer.Option(help="LoRA adapter directory.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Prompts per batch.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Longest generation.")] = None,
    sample: Annotated[bool, typer.Option("--sample/--greedy", help="Sample or greedy.")] = False,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N instances.")] = None,
) -> None:
    """Generate student explanations (base model + optional adapter) into resumable JSONL."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    over: dict[str, Any] = {}
    if input_file:
        over["input_file"] = str(input_file)
    if output_file:
        over["output_file"] = str(output_file)
    if model:
        over["model"] = {"name_or_path": model}
    if adapter:
        over["adapter"] = str(adapter)
    for k, v in (
        ("batch_size", batch_size),
        ("max_new_tokens", max_new_tokens),
        ("seed", seed),
        ("limit", limit),
    ):
        if v is not None:
            over[k] = v
    if sample:
        over["do_sample"] = True
    cfg = load_generate_config(str(config) if config else {}, over)
    path = generate(cfg)
    typer.echo(str(path))
