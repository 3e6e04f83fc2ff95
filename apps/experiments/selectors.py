"""Team-scoped reads of experiments and trials, the trade-off chart, the frontier and the CSV export."""

import csv
import io

from django.db.models import Count, Q, QuerySet
from django.http import HttpResponse
from django.urls import reverse

from apps.accounts.selectors import get_scoped_or_404, scope_to_teams
from apps.core.charts import LAYOUT, figure_json
from apps.core.errors import ApplicationError, NotFound
from apps.core.units import format_bytes
from apps.experiments.models import Experiment, Trial, TrialStatus

FAMILY_COLORS = {
    "baseline": "#111827",
    "quantize": "#4f46e5",
    "prune": "#059669",
    "structured_prune": "#d97706",
    "low_rank": "#db2777",
    "distill": "#0891b2",
    "finetune": "#6b7280",
    "pipeline": "#7c3aed",
}
FAMILY_NAMES = {
    "baseline": "base model",
    "quantize": "quantization",
    "prune": "unstructured pruning",
    "structured_prune": "structured pruning",
    "low_rank": "low-rank",
    "distill": "distillation",
    "finetune": "fine-tuning",
    "pipeline": "pipelines",
}


def experiments_for_user(user) -> QuerySet[Experiment]:
    return (
        scope_to_teams(Experiment.objects.all(), user)
        .select_related(
            "team",
            "created_by",
            "base_version__model",
            "train_dataset_version__dataset",
            "eval_dataset_version__dataset",
            "recommended__version",
        )
        .annotate(
            trials_total=Count("trials", filter=~Q(trials__number=0)),
            trials_finished=Count(
                "trials",
                filter=~Q(trials__number=0)
                & Q(trials__status__in=[s for s in TrialStatus.values if s not in ("queued", "running")]),
            ),
        )
        .order_by("-created_at", "-pk")
    )


def team_experiments(user, team) -> QuerySet[Experiment]:
    """`experiments_for_user` narrowed to the current team; none when there is no current team."""
    experiments = experiments_for_user(user)
    return experiments.filter(team=team) if team is not None else experiments.none()


def experiment_for_user(user, pk) -> Experiment:
    return get_scoped_or_404(experiments_for_user(user), user, pk=pk)


def trials_of(experiment: Experiment) -> QuerySet[Trial]:
    return experiment.trials.select_related("version__model", "job__node").order_by("number")


def baseline_of(trials: list[Trial]) -> Trial | None:
    return next((trial for trial in trials if trial.number == 0), None)


def size_reduction(experiment: Experiment, baseline: Trial | None) -> float | None:
    """How many times smaller the recommended artifact is than the base (None without one)."""
    best = experiment.recommended
    if best is None or baseline is None or not baseline.artifact_bytes or not best.artifact_bytes:
        return None
    return baseline.artifact_bytes / best.artifact_bytes


def baselines_of(experiments: list[Experiment]) -> dict[int, Trial]:
    """The baseline trial of each experiment, in one query (for lists)."""
    trials = Trial.objects.filter(experiment__in=experiments, number=0)
    return {trial.experiment_id: trial for trial in trials}


def frontier(trials: list[Trial], measure: str = "size") -> list[Trial]:
    flag = "on_size_frontier" if measure == "size" else "on_latency_frontier"
    cost = "artifact_bytes" if measure == "size" else "latency_ms"
    return sorted((t for t in trials if getattr(t, flag)), key=lambda t: getattr(t, cost))


def _hover(trial: Trial) -> str:
    parts = [
        f"<b>{trial.label}</b>",
        f"accuracy {100 * trial.accuracy:.2f}%",
        f"{format_bytes(trial.artifact_bytes)} ({trial.artifact_bytes:,} bytes)",
        f"{trial.nonzero_parameters:,} non-zero of {trial.parameter_count:,} parameters",
        f"{trial.flops_per_sample:,} FLOPs per sample",
        f"{trial.latency_ms:.3f} ms per sample" if trial.latency_ms is not None else "",
    ]
    return "<br>".join(part for part in parts if part)


def _version_url(trial: Trial) -> str:
    if trial.version is None:
        return ""
    return reverse("registry:version", args=[trial.version.model_id, trial.version.number])


def tradeoff_chart(experiment: Experiment, trials: list[Trial]) -> dict:
    """Accuracy against artifact size (log x), one color per method family, the frontier, the
    base model and the target band; a menu switches x to latency. Clicking opens the version."""
    import plotly.graph_objects as go

    measured = [t for t in trials if t.status == TrialStatus.SUCCEEDED and t.accuracy is not None]
    figure = go.Figure()
    families = sorted({t.family for t in measured}, key=lambda f: list(FAMILY_COLORS).index(f))
    for family in families:
        figure.add_trace(_family_trace(experiment, family, [t for t in measured if t.family == family]))
    size_line, latency_line = frontier(measured, "size"), frontier(measured, "latency")
    figure.add_trace(_frontier_trace(size_line, latency_line))
    figure.update_layout(
        **{**LAYOUT, "height": 420},
        title="Accuracy against artifact size",
        xaxis={"type": "log", "title": "artifact size (bytes, log scale)"},
        yaxis={"title": "test accuracy (%)"},
        legend={"orientation": "h", "y": -0.2},
        hovermode="closest",
    )
    baseline = baseline_of(measured)
    if baseline is not None:
        _target_band(figure, 100 * baseline.accuracy, experiment.max_accuracy_drop)
    chart = figure_json(figure)  # serialized once; the menu is built from the same data
    chart["layout"]["updatemenus"] = [_axis_menu(chart["data"], size_line, latency_line)]
    return chart


def _family_trace(experiment: Experiment, family: str, members: list[Trial]):
    import plotly.graph_objects as go

    return go.Scatter(
        x=[t.artifact_bytes for t in members],
        y=[100 * t.accuracy for t in members],
        mode="markers",
        name=FAMILY_NAMES.get(family, family),
        marker={
            "color": FAMILY_COLORS.get(family, "#6b7280"),
            "size": 16 if family == "baseline" else 11,
            "symbol": "star" if family == "baseline" else "circle",
            "line": {"width": [3 if t.pk == experiment.recommended_id else 0 for t in members], "color": "#f59e0b"},
        },
        hovertext=[_hover(t) for t in members],
        hoverinfo="text",
        customdata=[_version_url(t) for t in members],
        meta={"latency": [t.latency_ms for t in members]},
    )


def _frontier_trace(size_line: list[Trial], latency_line: list[Trial]):
    """The size frontier as drawn; the latency frontier rides along for the axis menu."""
    import plotly.graph_objects as go

    return go.Scatter(
        x=[t.artifact_bytes for t in size_line],
        y=[100 * t.accuracy for t in size_line],
        mode="lines",
        name="Pareto frontier",
        line={"color": "#9ca3af", "dash": "dot", "shape": "hv"},
        hoverinfo="skip",
        meta={"latency_x": [t.latency_ms for t in latency_line], "latency_y": [100 * t.accuracy for t in latency_line]},
    )


def _target_band(figure, top: float, drop: float) -> None:
    figure.add_hrect(
        y0=top - drop,
        y1=top,
        fillcolor="#10b981",
        opacity=0.12,
        line_width=0,
        annotation_text=f"within {drop:g} points",
        annotation_position="bottom right",
    )


def _axis_menu(data: list[dict], size_line: list[Trial], latency_line: list[Trial]) -> dict:
    """Buttons that switch the x axis between artifact size and latency (the frontier follows)."""
    size_x = [trace.get("x", []) for trace in data]
    size_y = [trace.get("y", []) for trace in data]
    latency_x = [trace.get("meta", {}).get("latency", trace.get("x", [])) for trace in data]
    latency_y = list(size_y)
    latency_x[-1] = [t.latency_ms for t in latency_line]
    latency_y[-1] = [100 * t.accuracy for t in latency_line]
    return {
        "type": "buttons",
        "direction": "right",
        "x": 0,
        "y": 1.15,
        "xanchor": "left",
        "buttons": [
            {
                "label": "Size",
                "method": "update",
                "args": [
                    {"x": size_x, "y": size_y},
                    {
                        "xaxis.title.text": "artifact size (bytes, log scale)",
                        "title.text": "Accuracy against artifact size",
                    },
                ],
            },
            {
                "label": "Latency",
                "method": "update",
                "args": [
                    {"x": latency_x, "y": latency_y},
                    {
                        "xaxis.title.text": "latency per sample (ms, log scale)",
                        "title.text": "Accuracy against latency",
                    },
                ],
            },
        ],
    }


CSV_COLUMNS = [
    "trial",
    "label",
    "family",
    "status",
    "recipe",
    "version",
    "accuracy",
    "artifact_bytes",
    "parameter_count",
    "nonzero_parameters",
    "flops_per_sample",
    "latency_ms",
    "within_target",
    "on_size_frontier",
    "on_latency_frontier",
    "recommended",
]


def _safe_cell(value) -> str:
    """Spreadsheets run cells that begin with = + - @ (and tab / CR) as formulas: prefix them with '."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def trials_csv(experiment: Experiment, trials: list[Trial]) -> str:
    import json

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for t in trials:
        writer.writerow(
            [
                _safe_cell(value)
                for value in (
                    t.number,
                    t.label,
                    t.family,
                    t.status,
                    json.dumps(t.recipe),
                    t.version.number if t.version else "",
                    t.accuracy,
                    t.artifact_bytes,
                    t.parameter_count,
                    t.nonzero_parameters,
                    t.flops_per_sample,
                    t.latency_ms,
                    t.within_target,
                    t.on_size_frontier,
                    t.on_latency_frontier,
                    t.pk == experiment.recommended_id,
                )
            ]
        )
    return out.getvalue()


def trials_csv_download(experiment: Experiment) -> HttpResponse:
    """The trials table as a CSV attachment (the page and the API serve the same file)."""
    response = HttpResponse(trials_csv(experiment, list(trials_of(experiment))), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="experiment-{experiment.pk}-trials.csv"'
    return response


# --- what the experiment form offers and resolves ------------------------------------------------------------


def compressible_versions(team) -> list:
    """Ready float versions of the team's models (a quantized version cannot be compressed again)."""
    from apps.registry.models import ModelVersion

    versions = (
        ModelVersion.objects.filter(model__team=team, status=ModelVersion.Status.READY)
        .select_related("model")
        .order_by("model__name", "-number")
    )
    return [v for v in versions if not any(t.get("kind") == "quantize" for t in v.transforms)]


def team_model_version(team, model_id: int, number: int):
    """A version of one of the team's models, or NotFound (another team's answers the same)."""
    from apps.registry.models import ModelVersion

    version = ModelVersion.objects.filter(model__team=team, model_id=model_id, number=number).first()
    if version is None:
        raise NotFound("base_version: no such model version in this team.", fields={"base_version": ["Not found."]})
    return version


def team_dataset_version(team, dataset_id: int, number: int, field: str = "dataset_version"):
    """A version of one of the team's datasets, or a 400 naming the form field (never silently another one)."""
    from apps.datasets.models import DatasetVersion

    version = DatasetVersion.objects.filter(dataset__team=team, dataset_id=dataset_id, number=number).first()
    if version is None:
        raise ApplicationError(f"{field}: no such dataset version in this team.", fields={field: ["Not found."]})
    return version


def trial_of(experiment: Experiment, number: int) -> Trial:
    trial = experiment.trials.select_related("version").filter(number=number).first()
    if trial is None:
        raise NotFound(f"trial: experiment {experiment.name} has no trial {number}.")
    return trial
