"""Negative result kept reproducible: a hand-fused BERT forward is no faster than the HF one.

The fp32 default runs at about 1.4x the FLOP floor (``bench_score.py``); the Linear GEMMs alone,
at the model's shapes, take about 1.14x. This script tests whether the memory-bound rest can be
cut in eager PyTorch by writing the BERT forward by hand:

- Q, K and V as one GEMM (384 x 1152) instead of three;
- the attention-output and FFN-down GEMMs accumulated in place into the residual
  (``x.add_(bias).addmm_(h, W)``: no bias broadcast copy, no separate residual add);
- position and token-type embeddings folded into one table; SDPA on strided Q/K/V views.

It encodes the distinct sentences of ``bench_score.py``'s pair set with the default path and the
fused one, interleaved, and prints both times, the per-repeat (back-to-back) ratios and the
largest embedding difference. Measured on the project's 2-core AVX2 VM (run-to-run noise about
+-10%): ``--claims 200 --repeats 12`` (1,076 sentences): paired ratio default/fused median 1.009,
range 0.94-1.10; ``--claims 500 --repeats 5``: 1.13 by the minima, 0.95 by the medians. Max
embedding difference 1.7e-7. No gain that stands out of the noise, so cec keeps the model's own
forward (which also works for every architecture, not only BERT).

    HF_HUB_OFFLINE=1 python benchmarks/bench_fused_forward.py [--claims 500] [--repeats 4]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_score import benchmark_pairs, load_claims  # noqa: E402

import cec  # noqa: E402
import cec.encode  # noqa: E402


class FusedBert:
    """Inference-only forward of a Hugging Face ``BertModel`` (absolute positions, erf GELU)."""

    def __init__(self, bert: torch.nn.Module):
        cfg = bert.config
        if cfg.hidden_act != "gelu" or getattr(cfg, "position_embedding_type", "absolute") != (
            "absolute"
        ):
            raise ValueError("FusedBert: needs hidden_act='gelu' and absolute positions")
        e = bert.embeddings
        self.word = e.word_embeddings.weight.detach()
        self.pos_type = (e.position_embeddings.weight + e.token_type_embeddings.weight[0]).detach()
        self.ln0 = (e.LayerNorm.weight.detach(), e.LayerNorm.bias.detach(), e.LayerNorm.eps)
        self.heads, self.hidden = cfg.num_attention_heads, cfg.hidden_size
        self.layers = []
        for layer in bert.encoder.layer:
            att, out = layer.attention.self, layer.attention.output
            qkv = torch.cat([att.query.weight, att.key.weight, att.value.weight])
            self.layers.append(
                {
                    "w_qkv": qkv.t().contiguous().detach(),
                    "b_qkv": torch.cat([att.query.bias, att.key.bias, att.value.bias]).detach(),
                    "w_o": out.dense.weight.t().contiguous().detach(),
                    "b_o": out.dense.bias.detach(),
                    "ln1": (out.LayerNorm.weight.detach(), out.LayerNorm.bias.detach()),
                    "eps1": out.LayerNorm.eps,
                    "w_i": layer.intermediate.dense.weight.t().contiguous().detach(),
                    "b_i": layer.intermediate.dense.bias.detach(),
                    "w_2": layer.output.dense.weight.t().contiguous().detach(),
                    "b_2": layer.output.dense.bias.detach(),
                    "ln2": (layer.output.LayerNorm.weight.detach(), layer.output.LayerNorm.bias),
                    "eps2": layer.output.LayerNorm.eps,
                }
            )

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        rows, width = ids.shape
        hidden, heads = self.hidden, self.heads
        tokens = rows * width
        x = F.embedding(ids, self.word).add_(self.pos_type[:width])
        x = F.layer_norm(x, (hidden,), self.ln0[0], self.ln0[1], self.ln0[2]).view(tokens, hidden)
        keep = mask.bool()[:, None, None, :]
        for p in self.layers:
            qkv = torch.addmm(p["b_qkv"], x, p["w_qkv"])
            q, k, v = qkv.view(rows, width, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
            ctx = ctx.transpose(1, 2).reshape(tokens, hidden)
            x.add_(p["b_o"]).addmm_(ctx, p["w_o"])
            x = F.layer_norm(x, (hidden,), *p["ln1"], p["eps1"])
            h = F.gelu(torch.addmm(p["b_i"], x, p["w_i"]))
            x.add_(p["b_2"]).addmm_(h, p["w_2"])
            x = F.layer_norm(x, (hidden,), *p["ln2"], p["eps2"])
        return x.view(rows, width, hidden)


def install_fused(enc: cec.encode.SentenceTransformerEncoder) -> None:
    """Swap ``enc``'s forward for FusedBert + the model's own pooling and normalisation."""
    st = enc.model
    fused = FusedBert(st[0].model)
    rest = list(st)[1:]

    def run(features: dict[str, np.ndarray]) -> torch.Tensor:
        ids = torch.from_numpy(features["input_ids"])
        mask = torch.from_numpy(features["attention_mask"])
        with torch.inference_mode():
            f = {"input_ids": ids, "attention_mask": mask, "token_embeddings": fused(ids, mask)}
            for module in rest:
                f = module(f)
            return f["sentence_embedding"]

    enc._runner = run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--claims", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=4)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    base = cec.CEC(device="cpu")
    pairs = benchmark_pairs(load_claims(), args.claims)
    sents = list(dict.fromkeys(s for pair in pairs for t in pair for s in base.segment(t)))

    def make() -> cec.encode.SentenceTransformerEncoder:
        path = str(cec.encode.default_model_dir())
        return cec.encode.SentenceTransformerEncoder(path, torch.device("cpu"))

    default, fused = make(), make()
    install_fused(fused)
    diff = (fused.encode(sents) - default.encode(sents)).abs().max().item()
    times: dict[str, list[float]] = {"default": [], "fused": []}
    for _ in range(args.repeats):  # interleaved: both see the same machine state
        for name, enc in (("default", default), ("fused", fused)):
            gc.collect()
            t0 = time.perf_counter()
            enc.encode(sents)
            times[name].append(time.perf_counter() - t0)
    d, f = times["default"], times["fused"]
    print(f"{len(sents)} distinct sentences; max |embedding diff| {diff:.1e}")
    print(f"default s: {[round(t, 2) for t in d]}\nfused   s: {[round(t, 2) for t in f]}")
    paired = np.asarray(d) / np.asarray(f)  # each repeat's pair ran back to back
    print(
        f"default / fused: {min(d) / min(f):.3f} (min), {np.median(d) / np.median(f):.3f} "
        f"(median); paired ratios median {np.median(paired):.3f} "
        f"[{paired.min():.3f}, {paired.max():.3f}]"
    )


if __name__ == "__main__":
    main()
