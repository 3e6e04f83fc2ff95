"""Team-scoped reads of jobs, their epochs and logs, and the training-curve chart."""

from django.db.models import QuerySet

from apps.accounts.selectors import get_scoped_or_404, scope_to_teams
from apps.core.charts import LAYOUT, figure_json
from apps.jobs.models import Job, JobEpoch, JobLogLine

LOG_PAGE = 500


def jobs_for_user(user) -> QuerySet[Job]:
    return (
        scope_to_teams(Job.objects.all(), user)
        .select_related("team", "submitted_by", "node")
        .order_by("-created_at", "-pk")
    )


def job_for_user(user, pk) -> Job:
    return get_scoped_or_404(Job.objects.select_related("team", "submitted_by", "node"), user, pk=pk)


def job_epochs(job: Job) -> QuerySet[JobEpoch]:
    return job.epochs.order_by("epoch")


def job_log_after(job: Job, after: int = 0, limit: int = LOG_PAGE) -> list[JobLogLine]:
    """Log lines with an id above `after` (a client tails by passing the last id it saw)."""
    return list(job.log_lines.filter(pk__gt=after).order_by("pk")[:limit])


def job_log_tail(job: Job, lines: int = 50) -> list[JobLogLine]:
    return list(reversed(job.log_lines.order_by("-pk")[:lines]))


def training_curves(epochs: list[JobEpoch]) -> dict:
    """Loss (left axis) and accuracy (right axis) per epoch, growing as epochs finish."""
    import plotly.graph_objects as go

    x = [e.epoch for e in epochs]
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=x, y=[e.train_loss for e in epochs], name="train loss", mode="lines+markers"))
    figure.add_trace(go.Scatter(x=x, y=[e.val_loss for e in epochs], name="val loss", mode="lines+markers"))
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[e.val_accuracy for e in epochs],
            name="val accuracy",
            mode="lines+markers",
            yaxis="y2",
            line={"dash": "dot"},
        )
    )
    figure.update_layout(
        **LAYOUT,
        title="Training curves",
        xaxis_title="epoch",
        yaxis_title="loss",
        yaxis2={"title": "accuracy", "overlaying": "y", "side": "right", "range": [0, 1]},
        legend={"orientation": "h", "y": -0.25},
        uirevision="curves",
    )
    return figure_json(figure)
