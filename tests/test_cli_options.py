"""The options `cec score`, `cec explain` and `cec baseline` share are defined once (issue 16.2).

Read from click's view of the real `cec` app: a shared option has the same flags, help and
default in every command that offers it, and each scorer option is a `cec.CEC` argument.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cec.cli.options import EmptyPolicy, InputFields, ScorerOptions, shared

COMMANDS = {  # command -> (group, fields it does not offer)
    "score": {ScorerOptions: (), InputFields: ()},
    "explain": {ScorerOptions: (), InputFields: ()},
    "baseline": {ScorerOptions: ("empty", "cache")},
}


def _click_commands() -> dict:
    from cec.cli import app

    return typer.main.get_command(app).commands  # type: ignore[attr-defined]


def test_every_scorer_option_is_a_cec_argument():
    import cec

    params = inspect.signature(cec.CEC).parameters
    names = [f.name for f in dataclasses.fields(ScorerOptions)]
    assert [n for n in names if n not in params] == []
    defaults = ScorerOptions().cec_kwargs()
    for key, value in defaults.items():  # the CLI's defaults are the library's
        assert params[key].default == value, key


def test_shared_options_are_the_same_in_every_command():
    commands = _click_commands()
    seen: dict[str, tuple] = {}
    for command, groups in COMMANDS.items():
        params = {p.name: p for p in commands[command].params}
        for group, skip in groups.items():
            for f in dataclasses.fields(group):
                if f.name in skip:
                    assert f.name not in params, (command, f.name)
                    continue
                p = params[f.name]
                default = p.default.value if hasattr(p.default, "value") else p.default
                shape = (tuple(p.opts), p.help, default, getattr(p, "rich_help_panel", None))
                assert seen.setdefault(f.name, shape) == shape, (command, f.name)
    assert set(seen) >= {"model", "device", "batch_size", "splitter", "precision", "pred_field"}


def test_shared_hands_the_command_one_group():
    app = typer.Typer()
    got = []

    @app.command()
    @shared(ScorerOptions, "opts", skip=("cache",))
    def run(
        name: str,
        opts: ScorerOptions = ScorerOptions(),  # noqa: B008 - frozen
        loud: bool = False,
    ) -> None:
        """Doc of run."""
        got.append((name, opts, loud))

    runner = CliRunner()
    result = runner.invoke(app, ["x", "--batch-size", "8", "--empty", "nan", "-m", "./m", "--loud"])
    assert result.exit_code == 0, result.output
    name, opts, loud = got[0]
    assert (name, loud) == ("x", True)
    assert opts == ScorerOptions(model="./m", batch_size=8, empty=EmptyPolicy.nan)
    assert opts.cec_kwargs() == {
        "batch_size": 8,
        "empty": "nan",
        "precision": "fp32",
        "model": "./m",
    }
    usage = runner.invoke(app, ["x", "--cache", "c.sqlite"])
    assert usage.exit_code == 2 and "--cache" in usage.output  # skipped: not offered
    assert runner.invoke(app, ["x", "--batch-size", "0"]).exit_code == 2  # min=1 kept
    assert run.__doc__ == "Doc of run."


def test_shared_rejects_a_wrong_group_use():
    with pytest.raises(ValueError, match=r"skip: ScorerOptions has no field\(s\) \['modle'\]"):
        shared(ScorerOptions, "opts", skip=("modle",))

    def command(path: Path) -> None: ...

    with pytest.raises(ValueError, match="command has no parameter 'opts'"):
        shared(ScorerOptions, "opts")(command)


def test_input_fields_read_an_item_file(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("key,hyp,r1,r2\na,Ice melts.,Seas rise.,Ice melts.\n", encoding="utf-8")
    fields = InputFields(pred_field="hyp", ref_field=["r1", "r2"], id_field="key")
    (rec,) = list(fields.read(path))
    assert (rec.id, rec.prediction, list(rec.references)) == (
        "a",
        "Ice melts.",
        ["Seas rise.", "Ice melts."],
    )


def test_explain_takes_the_precision_and_cache_of_score(scorer, tmp_path, capsys):
    """`cec explain --precision int8 --cache FILE` aligns with the int8 scorer `cec score` uses."""
    import json

    import cec
    from cec.cli import main

    gen, ref = "CO2 traps heat. The planet warms.", "The planet warms because CO2 traps heat."
    cache = tmp_path / "emb.sqlite"
    args = ["explain", gen, ref, "--json", "--device", "cpu", "--precision", "int8"]
    assert main([*args, "--cache", str(cache)]) == 0
    got = json.loads(capsys.readouterr().out)
    want = cec.CEC(device="cpu", precision="int8").align(gen, ref)
    assert "|prec:int8" in got["signature"] and got["signature"] == str(want.signature)
    assert got["cec"] == pytest.approx(want.sym, abs=1e-6)
    assert got["cec"] != pytest.approx(scorer.align(gen, ref).sym, abs=1e-6)  # not fp32's
    from cec.cache import SQLiteCache

    stored = SQLiteCache(cache)
    assert len(stored) >= 3  # the three sentences of the pair went through --cache
    stored.close()
