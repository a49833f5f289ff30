"""Human-facing output of the trainer: the model card (README.md) and Rich summary tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from .settings import as_dict

if TYPE_CHECKING:
    from .common import EvaluationReport, FitResult


def _source_description(source: str, result: FitResult) -> str:
    from .data import load_hub_dataset, pick_loader

    data = result.settings.data
    if data.dataset_config and pick_loader(source) is load_hub_dataset:
        return f"`{source}` (config `{data.dataset_config}`, split `{data.split}`)"
    return f"`{source}` (split `{data.split}`)"


def _source_lines(result: FitResult) -> list[str]:
    """One line per data source: what it is, its weight and its clips per split."""
    if not result.sources:
        return [f"- Source: {_source_description(result.settings.data.dataset[0], result)}"]
    lines = []
    for info in result.sources:
        clips = ", ".join(f"{split} {n}" for split, n in info.clips.items())
        lines.append(
            f"- Source `{info.name}`: {_source_description(info.source, result)}, weight {info.weight:g}; "
            f"clips: {clips}"
        )
    return lines


def _is_card_metric(name: str) -> bool:
    return name == "epoch" or (name.startswith("eval_") and name.endswith(("accuracy", "macro_f1", "loss")))


def _metric_rows(metrics: Mapping[str, float]) -> list[str]:
    return [f"| {name} | {value:.4f} |" for name, value in sorted(metrics.items())]


def model_card(result: FitResult) -> str:
    """Markdown: data, labels, duration limit, training arguments, metrics, reproducing command."""
    limit = result.limit
    counts = result.train_label_counts
    how = (
        f"the {limit.percentile:g}th percentile of the training clip durations"
        if limit.percentile is not None
        else "set by hand"
    )
    training = as_dict(result.settings.training)
    model = as_dict(result.settings.model)
    if model["from_config"] is not None:
        model["base_model"] = "(none: random weights from from_config)"
        model["freeze_feature_encoder"] = "False (random weights are never frozen)"
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: audio-classification",
        "tags: [audio-classification, streamclf]",
        "---",
        "",
        f"# {result.output_dir.name}",
        "",
        f"An audio classifier (`{result.model_type}`) fine-tuned with `python -m trainer fit` for streamclf.",
        "",
        "## Data",
        "",
        *_source_lines(result),
        f"- Label column `{result.settings.data.label_column}`"
        + (f"; vocabulary `{result.settings.data.vocab}`" if result.settings.data.vocab else ""),
        "- Clips: " + ", ".join(f"{name} {size}" for name, size in result.split_sizes.items()),
        f"- Audio resampled to {result.sampling_rate} Hz mono",
        f"- Undecodable clips skipped: {len(result.skipped)}",
        "",
        "## Labels",
        "",
        f"{len(result.labels)} classes (id: name, training clips):",
        "",
        *[f"- {i}: {name} ({counts.get(name, 0)})" for i, name in enumerate(result.labels)],
        "",
        "## Duration limit",
        "",
        f"Clips are truncated to **{limit.seconds:.2f} s**, {how} "
        f"(median {limit.median:.2f} s, longest {limit.longest:.2f} s; {limit.clips_truncated} training "
        "clip(s) truncated). Batches are padded to their longest clip.",
        "",
        "## Training arguments",
        "",
        "| argument | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in {**model, **training}.items()],
        "",
        f"## Metrics ({result.eval_split} split, {result.split_sizes.get(result.eval_split, 0)} clips)"
        + (f"; the checkpoint was chosen on `{result.selection_set}`" if result.selection_set else ""),
        "",
        "| metric | value |",
        "|---|---|",
        *_metric_rows({k: v for k, v in result.metrics.items() if _is_card_metric(k)}),
        "",
        "## Reproduce",
        "",
        "```sh",
        result.command,
        "```",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        f'classifier = pipeline("audio-classification", model="{result.output_dir}")',
        "```",
        "",
        f"or `streamclf listen --model {result.output_dir}`.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(result: FitResult) -> None:
    (result.output_dir / "README.md").write_text(model_card(result), encoding="utf-8")


def metrics_table(title: str, metrics: Mapping[str, Any]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


def fit_summary(result: FitResult) -> Table:
    rows: dict[str, Any] = {
        "output": str(result.output_dir),
        "labels": len(result.labels),
        **{f"{name} clips": size for name, size in result.split_sizes.items()},
        "duration limit (s)": f"{result.limit.seconds:.2f}",
        "skipped clips": len(result.skipped),
    }
    rows.update({name.removeprefix("eval_"): value for name, value in result.metrics.items()})
    return metrics_table("trainer fit", rows)


def evaluation_tables(report: EvaluationReport) -> list[Table]:
    summary = metrics_table(
        "trainer evaluate",
        {"clips": report.clips, "accuracy": report.accuracy, "macro F1": report.macro_f1,
         "skipped clips": len(report.skipped)},
    )
    per_class = Table(title="per class")
    for column in ("label", "precision", "recall", "F1", "support"):
        per_class.add_column(column, justify="left" if column == "label" else "right")
    for item in report.per_class:
        per_class.add_row(item.label, f"{item.precision:.3f}", f"{item.recall:.3f}", f"{item.f1:.3f}",
                          str(item.support))
    return [summary, per_class]


def show(tables: list[Table]) -> None:
    """Tables go to stderr: stdout stays free for machine-readable output."""
    console = Console(stderr=True)
    for table in tables:
        console.print(table)
