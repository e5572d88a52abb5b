"""Run the Python blocks of README.md and docs/*.md as written, and check what they show.

The convention (docs/architecture.md, "Examples that run"):

- Every fenced ```` ```python ```` block runs, in file order, one namespace per file, on the CPU
  and offline, in a scratch folder where ``examples/`` is the repository's.
- ``# -> EXPECTED`` after a statement (at the end of its last line, or on the comment lines
  right after it) is what the statement shows: the text ``print(...)`` wrote, or the ``repr``
  of an expression's value. Several ``# ->`` lines in a row are one expected text. A further
  `` # `` inside the line starts a remark that is not compared.
- A ```` ```text title="Output" ```` block right after a Python block is everything the block
  printed.
- Comparison: numbers with a decimal point agree to one unit of the last digit shown (0.773
  matches 0.77349 and 0.7726; floats are never compared as text); ``...`` stands for any text;
  runs of whitespace are free; everything else, signatures included, must be equal.
- ``<!-- not-run: REASON -->`` on the line before a block keeps it from running (a GPU, a
  download, a key or a service it needs); it is still parsed, and the test reports it as a skip
  with its reason.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(
    r"^(?P<fence>```+)(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.S | re.M
)
_NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<why>.+?)\s*-->\s*$")
_ARROW = "# -> "
# a decimal number standing alone (not part of 0.1.0 or a hash); "0.93..." is 0.93 and "..."
_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?!\w|\.(?!\.\.))")


@dataclass
class Block:
    path: Path
    line: int  # of the first code line, 1-based
    code: str
    not_run: str | None = None
    output: str | None = None  # the ```text title="Output" block after it

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


@dataclass
class Report:
    ran: list[str] = field(default_factory=list)
    checked: int = 0


def blocks(path: Path) -> list[Block]:
    """The Python blocks of one markdown file (top-level fences only)."""
    text = path.read_text(encoding="utf-8")
    found: list[Block] = []
    last_end, pending = 0, None
    for m in _FENCE.finditer(text):
        info = m.group("info").strip()
        lang = info.split()[0] if info else ""
        between = text[last_end : m.start()]
        if (
            pending is not None
            and lang == "text"
            and 'title="Output"' in info
            and not between.strip()
        ):
            pending.output = m.group("body")
        pending = None
        if lang == "python":
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = _NOT_RUN.search(before)
            block = Block(
                path,
                text[: m.start()].count("\n") + 2,
                m.group("body"),
                marker.group("why") if marker else None,
            )
            found.append(block)
            pending = block
        last_end = m.end()
    return found


def _expected(lines: list[str], stmt: ast.stmt, next_start: int) -> str | None:
    """The ``# ->`` text that belongs to ``stmt`` (``lines`` are the block's)."""
    parts: list[str] = []
    last = lines[stmt.end_lineno - 1]
    if _ARROW in last:
        parts.append(last.split(_ARROW, 1)[1])
    for line in lines[stmt.end_lineno : next_start - 1]:
        if not line.strip().startswith(_ARROW.strip()):
            break
        parts.append(line.strip()[len(_ARROW.strip()) :])
    if not parts:
        return None
    return " ".join(p.split(" # ", 1)[0].strip() for p in parts)


def matches(expected: str, actual: str) -> str | None:
    """``None`` when ``actual`` shows what ``expected`` says, else why not."""
    pattern, numbers = [], []
    for piece in re.split(r"(\.\.\.|" + _NUMBER.pattern + r"|\s+)", expected.strip()):
        if not piece:
            continue
        if piece == "...":
            pattern.append(r".*?")
        elif piece.isspace():
            pattern.append(r"\s*")
        elif _NUMBER.fullmatch(piece):
            pattern.append(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)")
            numbers.append(piece)
        else:
            pattern.append(re.escape(piece))
    m = re.fullmatch("".join(pattern), actual.strip(), re.S)
    if m is None:
        return "the text differs"
    for shown, got in zip(numbers, m.groups(), strict=True):
        decimals = len(shown.split(".")[1])
        if abs(float(got) - float(shown)) > 10.0**-decimals * 1.0001:
            return f"{got} is not {shown} (to {decimals} decimals)"
    return None


def run(block: Block, namespace: dict) -> int:
    """Run one block in ``namespace``; returns the number of outputs checked.

    Raises:
        AssertionError: A shown output differs from the real one.
    """
    tree = ast.parse(block.code, filename=block.where)
    lines = block.code.splitlines()
    checked = 0
    printed = io.StringIO()
    body = tree.body
    for k, stmt in enumerate(body):
        next_start = body[k + 1].lineno if k + 1 < len(body) else len(lines) + 1
        expected = _expected(lines, stmt, next_start)
        where = f"{block.path.relative_to(ROOT)}:{block.line + stmt.lineno - 1}"
        module = ast.Module(body=[stmt], type_ignores=[])
        ast.increment_lineno(module, block.line - 1)
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            if expected is not None and isinstance(stmt, ast.Expr) and not _is_print(stmt):
                value = eval(  # noqa: S307 - the docs' own examples
                    compile(ast.Expression(module.body[0].value), str(block.path), "eval"),
                    namespace,
                )
                shown = repr(value)
            else:
                exec(compile(module, str(block.path), "exec"), namespace)  # noqa: S102
                shown = None
        printed.write(buffer.getvalue())
        if expected is None:
            continue
        if shown is None:
            if not _is_print(stmt):
                raise AssertionError(f"{where}: '# ->' after a statement that shows nothing")
            shown = buffer.getvalue()
        why = matches(expected, shown)
        assert why is None, f"{where}: {why}\n  shown:  {expected}\n  actual: {shown.strip()}"
        checked += 1
    if block.output is not None:
        why = matches(block.output, printed.getvalue())
        assert why is None, (
            f"{block.where}: the Output block below it: {why}\n--- shown\n{block.output}"
            f"--- actual\n{printed.getvalue()}"
        )
        checked += 1
    return checked


def _is_print(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Name)
        and stmt.value.func.id == "print"
    )
