"""Team-scoped reads of datasets, versions, previews and the torch loader."""

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from apps.accounts.selectors import get_scoped_or_404, scope_to_teams
from apps.core.charts import bar_chart
from apps.core.storage import local_path
from apps.datasets.loading import VersionSplit, load_splits
from apps.datasets.models import Dataset, DatasetVersion


def datasets_for_user(user) -> QuerySet[Dataset]:
    """The user's datasets with version count, stored bytes and the latest version's status."""
    latest = DatasetVersion.objects.filter(dataset=OuterRef("pk")).order_by("-number")
    return (
        scope_to_teams(Dataset.objects.all(), user)
        .select_related("team", "created_by")
        .annotate(
            version_count=Count("versions"),
            total_bytes=Coalesce(Sum("versions__bytes"), Value(0), output_field=IntegerField()),
            latest_number=Subquery(latest.values("number")[:1]),
            latest_status=Subquery(latest.values("status")[:1]),
        )
        .order_by("name", "pk")
    )


def team_datasets(user, team) -> QuerySet[Dataset]:
    """`datasets_for_user` narrowed to the current team; none when there is no current team."""
    datasets = datasets_for_user(user)  # none() keeps the annotations the filters may name
    return datasets.filter(team=team) if team is not None else datasets.none()


def dataset_for_user(user, pk) -> Dataset:
    return get_scoped_or_404(Dataset.objects.select_related("team"), user, pk=pk)


def dataset_versions(dataset: Dataset) -> QuerySet[DatasetVersion]:
    return dataset.versions.select_related("created_by").order_by("-number")


def version_for_user(user, dataset_pk, number) -> DatasetVersion:
    return get_scoped_or_404(
        DatasetVersion.objects.select_related("dataset__team", "created_by"),
        user,
        via="dataset__team",
        dataset_id=dataset_pk,
        number=number,
    )


def latest_ready_version(dataset: Dataset) -> DatasetVersion | None:
    return dataset.versions.filter(status=DatasetVersion.Status.READY).order_by("-number").first()


def version_splits(version: DatasetVersion) -> tuple[VersionSplit, VersionSplit, VersionSplit]:
    """(train, val, test) torch datasets of a ready version, memory-mapped from its file."""
    if version.status != DatasetVersion.Status.READY:
        raise ValueError(f"{version} is {version.status}, not ready")
    return load_splits(local_path(version.artifact))


def class_count_chart(version: DatasetVersion) -> dict:
    return bar_chart(
        version.class_names, version.class_counts, title="Samples per class", x_title="class", y_title="samples"
    )


def ready_versions_for(team, task: str) -> QuerySet[DatasetVersion]:
    """Ready versions of a team's datasets of one task, for the pages' "train on" and "evaluate on" selects."""
    return (
        DatasetVersion.objects.filter(dataset__team=team, dataset__task=task, status=DatasetVersion.Status.READY)
        .select_related("dataset")
        .order_by("dataset__name", "-number")
    )


def ready_versions_of_team(team) -> QuerySet[DatasetVersion]:
    """Every ready version of the team's datasets (the experiment form's "fine-tune on" and "measure on")."""
    return (
        DatasetVersion.objects.filter(dataset__team=team, status=DatasetVersion.Status.READY)
        .select_related("dataset")
        .order_by("dataset__name", "-number")
    )
