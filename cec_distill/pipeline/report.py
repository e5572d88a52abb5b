"""The study's report stage: ``report/report.md`` (Table 1, before vs after, CEC vs BERTScore)."""

from __future__ import annotations

import json
from pathlib import Path

from cec_distill.pipeline.status import _Run


def _p(v: float) -> str:
    return "< .001" if v < 0.001 else f"{v:.3f}"


def _stage_report(r: _Run, results: dict[str, Path], stats_path: Path, timings: dict) -> Path:
    from cec_distill.metrics import load_results
    from cec_distill.report import table1, to_markdown, write_report

    out_dir = r.dir / "report"
    md = out_dir / "report.md"
    res = [load_results(results[k]) for k in ("before", "after") if k in results]
    write_report(res, out_dir)
    stats = json.loads(stats_path.read_text())
    train_sum = json.loads((r.dir / "train" / "train_summary.json").read_text())
    lines = [f"# Study report: {r.study.get('name') or r.dir.name}", ""]
    n_test = len(res[-1].items)
    lines += [
        f"Test items: {n_test}. References: {'teacher' if (r.dir / 'labels').exists() else 'human (e-SNLI, all three)'}.",
        "",
    ]
    lines += ["## Table 1 (corpus scores)", "", to_markdown(table1(res)), ""]
    if stats.get("before_vs_after"):
        lines += ["## Before vs after fine-tuning (paired, same test items)", "",
                  "| score | before | after | diff [95% CI] | t (df) | p (t) | Wilcoxon W | p (W) | Cohen's d |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for col, v in stats["before_vs_after"].items():
            ci = v["difference_ci"]
            lines.append(
                f"| {col} | {v['mean_before']:.3f} | {v['mean_after']:.3f} | "
                f"{ci['estimate']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}] | "
                f"{v['ttest']['statistic']:.2f} ({v['ttest']['df']}) | {_p(v['ttest']['pvalue'])} | "
                f"{v['wilcoxon']['statistic']:.1f} | {_p(v['wilcoxon']['pvalue'])} | {v['cohens_d']:.2f} |"
            )
        lines.append("")
    if "cec_vs_bertscore_text" in stats:
        lines += ["## CEC vs BERTScore on the fine-tuned student (the paper's 4.3 procedure)", "",
                  "```", stats["cec_vs_bertscore_text"], "```", ""]  # fmt: skip
    lines += ["## Training", "",
              f"- steps {train_sum['steps']}, examples {train_sum['n_examples']} "
              f"(dropped {train_sum['n_dropped']}, truncated {train_sum['n_truncated']}), "
              f"4-bit {train_sum['loaded_in_4bit']}, final train loss {train_sum['final_train_loss']}",
              f"- last validation: {json.dumps(train_sum.get('eval'))}", ""]  # fmt: skip
    lines += (
        ["## Signatures", ""] + [f"- {m}: `{sig}`" for m, sig in res[-1].signatures.items()] + [""]
    )
    lines += ["## Stage times (seconds)", ""] + [f"- {k}: {v}" for k, v in timings.items()] + [""]
    md.write_text("\n".join(lines))
    return md
