"""Team-scoped reads of the registry, and the chart data its pages and API share."""

from django.db.models import Count, Max, Min, OuterRef, Prefetch, Q, QuerySet, Subquery

from apps.accounts.selectors import get_scoped_or_404, scope_to_teams
from apps.core.charts import LAYOUT, figure_json
from apps.core.errors import ApplicationError
from apps.registry.models import Alias, AliasMove, Evaluation, Model, ModelExport, ModelVersion

READY = ModelVersion.Status.READY


def models_for_user(user) -> QuerySet[Model]:
    """The user's models with version count, best accuracy and smallest ready artifact."""
    ready = Q(versions__status=READY)
    return (
        scope_to_teams(Model.objects.all(), user)
        .select_related("team", "dataset")
        .annotate(
            version_count=Count("versions", distinct=True),
            smallest_bytes=Min("versions__bytes", filter=ready),
            best_accuracy=Subquery(
                Evaluation.objects.filter(version__model=OuterRef("pk"), status=READY)
                .order_by("-accuracy")
                .values("accuracy")[:1]
            ),
            latest_number=Max("versions__number"),
        )
        .prefetch_related(Prefetch("aliases", queryset=Alias.objects.select_related("version")))
        .order_by("name", "pk")
    )


def model_for_user(user, pk) -> Model:
    return get_scoped_or_404(Model.objects.select_related("team", "dataset"), user, pk=pk)


def model_versions(model: Model) -> QuerySet[ModelVersion]:
    """Versions, newest first, with their evaluations (latest first) and alias names."""
    return (
        model.versions.select_related("created_by", "parent", "trained_on__dataset")
        .prefetch_related(
            Prefetch("evaluations", queryset=Evaluation.objects.select_related("dataset_version__dataset")),
            Prefetch("aliases", queryset=Alias.objects.only("name", "version_id", "model_id")),
        )
        .order_by("-number")
    )


def version_for_user(user, model_pk, number) -> ModelVersion:
    return get_scoped_or_404(
        ModelVersion.objects.select_related("model__team", "parent", "trained_on__dataset", "created_by"),
        user,
        via="model__team",
        model_id=model_pk,
        number=number,
    )


def version_evaluations(version: ModelVersion) -> QuerySet[Evaluation]:
    return version.evaluations.select_related("dataset_version__dataset", "requested_by").order_by("-created_at")


def version_exports(version: ModelVersion) -> QuerySet[ModelExport]:
    return version.exports.all()


def model_aliases(model: Model) -> QuerySet[Alias]:
    return model.aliases.select_related("version").prefetch_related(
        Prefetch("moves", queryset=AliasMove.objects.select_related("from_version", "to_version", "moved_by"))
    )


def best_evaluation(version: ModelVersion) -> Evaluation | None:
    """The most recent finished evaluation of a version (from the prefetched ones when present)."""
    finished = [e for e in version.evaluations.all() if e.status == READY]
    return max(finished, key=lambda e: e.finished_at, default=None)


def _lineage_positions(versions: list[ModelVersion]) -> dict[int, tuple[int, int]]:
    """(generation, row) per version: roots at generation 0, children one step to the right."""
    by_pk = {v.pk: v for v in versions}
    depth: dict[int, int] = {}

    def generation(version) -> int:
        if version.pk not in depth:
            parent = by_pk.get(version.parent_id)
            depth[version.pk] = 0 if parent is None else generation(parent) + 1
        return depth[version.pk]

    rows: dict[int, int] = {}
    positions = {}
    for version in sorted(versions, key=lambda v: v.number):
        column = generation(version)
        positions[version.pk] = (column, rows.get(column, 0))
        rows[column] = rows.get(column, 0) + 1
    return positions


def lineage_chart(versions: list[ModelVersion]) -> dict:
    """A plotly graph of the versions: arrows from each parent to its children."""
    import plotly.graph_objects as go

    positions = _lineage_positions(versions)
    figure = go.Figure()
    for version in versions:
        if version.parent_id in positions:
            (x0, y0), (x1, y1) = positions[version.parent_id], positions[version.pk]
            figure.add_annotation(
                x=x1,
                y=-y1,
                ax=x0,
                ay=-y0,
                xref="x",
                yref="y",
                axref="x",
                ayref="y",
                showarrow=True,
                arrowhead=2,
                arrowwidth=1.5,
                arrowcolor="#94a3b8",
                text="",
            )
    figure.add_trace(
        go.Scatter(
            x=[positions[v.pk][0] for v in versions],
            y=[-positions[v.pk][1] for v in versions],
            mode="markers+text",
            text=[f"v{v.number}{' ' + v.label if v.label else ''}" for v in versions],
            textposition="top center",
            marker={"size": 18, "color": ["#4f46e5" if v.status == READY else "#cbd5e1" for v in versions]},
            hovertext=[f"v{v.number} · {v.get_source_display()} · {v.bytes:,} bytes" for v in versions],
            hoverinfo="text",
        )
    )
    layout = {**LAYOUT, "height": 120 + 60 * max((p[1] for p in positions.values()), default=0)}
    figure.update_layout(**layout, showlegend=False, title="Lineage")
    figure.update_xaxes(visible=False, range=[-0.5, max((p[0] for p in positions.values()), default=0) + 0.5])
    figure.update_yaxes(visible=False)
    return figure_json(figure)


def confusion_chart(evaluation: Evaluation, class_names: list[str]) -> dict:
    """The confusion matrix as a heat map (rows: true class, columns: predicted)."""
    import plotly.graph_objects as go

    matrix = evaluation.confusion_matrix
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=class_names,
            y=class_names,
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{z} samples<extra></extra>",
        )
    )
    size = max(320, 40 * len(class_names) + 120)
    figure.update_layout(**{**LAYOUT, "height": size}, title="Confusion matrix (test split)")
    figure.update_xaxes(title="predicted", type="category")
    figure.update_yaxes(title="true", type="category", autorange="reversed")
    return figure_json(figure)


def team_models(user, team) -> QuerySet[Model]:
    """`models_for_user` narrowed to the current team; none when there is no current team."""
    models = models_for_user(user)
    return models.filter(team=team) if team is not None else models.none()


def version_of(model: Model, number) -> ModelVersion:
    """A version of `model` by number, or a 400 naming the version (a form named one that is not there)."""
    version = model.versions.filter(number=number).first()
    if version is None:
        raise ApplicationError(f"Model {model.name} has no version {number}.", fields={"version": ["Not found."]})
    return version


def version_children(version: ModelVersion) -> list[ModelVersion]:
    return list(version.children.order_by("number"))
