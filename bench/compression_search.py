"""Auto search against the full grid: the same recommended model with at most half the trials?

    .venv/bin/python bench/compression_search.py [--samples 10000] [--hidden 256,256] [--drop 1.0] [--smoke]

One run, side by side: a base MLP is trained on a bundled synthetic dataset by a `train`
job; then two experiments compress it with the same accuracy target: `grid` runs every
recipe of Lepton's search space (every quantization scheme, sparsity, channel ratio and
rank, and each of those points followed by int8), `auto` searches the same space by
bisection per family and pipelines of the best. Every trial is a real `compress` job
(fine-tuning, storing, the registry's measurement of the stored artifact) run inline by
the workers' code (django-q sync mode) on a throwaway SQLite database. Trials are
deterministic given the recipe and seed, so the same recipe gives the same model in both.
Prints each experiment's trials, the recommended model of each, the trial counts, and
exits non-zero unless auto recommends the grid's model with at most half its trials.

--smoke: the same two experiments over the same whole search space and budget (every grid
recipe, auto's bisection and pipelines), each trial a real job, on a 1,000-sample set, a
16-wide base trained 1 epoch and 1 fine-tuning epoch per trial; the same report. Which model
each recommends is then noise, so it judges only what holds at any size: both experiments
succeeded and every trial was measured.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SMOKE = {"samples": 1_000, "hidden": "16", "epochs": 1, "finetune_epochs": 1}  # --smoke


def _setup_django(workdir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton_web.settings")
    os.environ["LEPTON_VAR_DIR"] = str(workdir)
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["LEPTON_MEDIA_ROOT"] = str(workdir / "media")
    os.environ["LEPTON_HEARTBEAT_THREAD"] = "0"
    os.environ["LEPTON_NODE_STALE_SECONDS"] = str(10**7)  # the bench's one node never heartbeats
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django_q.conf import Conf

    Conf.SYNC = True  # a queued task runs at once in this process, as a worker would run it


def _fixtures(args):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from apps.accounts.services import team_create
    from apps.datasets import services as datasets
    from apps.jobs.services import job_submit
    from apps.nodes.models import Node
    from apps.registry.services import model_create

    Node.objects.create(name="bench-cpu", worker_slots=4, status="online", last_heartbeat_at=timezone.now())
    user = get_user_model().objects.create_user("bench", password="x")
    team = team_create(creator=user, name="Bench")
    dataset = datasets.dataset_create(actor=user, team=team, name="synthetic", task="tabular_classification")
    params = {
        "samples": args.samples,
        "features": args.features,
        "classes": args.classes,
        "informative": args.informative,
        "seed": 0,
    }
    version = datasets.version_bundled(actor=user, dataset=dataset, name="synthetic", params=params)
    version.refresh_from_db()
    if version.status != "ready":
        raise RuntimeError(f"ingest ended {version.status}: {version.error}")
    hidden = [int(size) for size in args.hidden.split(",")]
    model = model_create(
        actor=user,
        team=team,
        name="mlp",
        task="tabular_classification",
        architecture={"family": "mlp", "hidden_sizes": hidden},
        dataset=dataset,
    )
    job = job_submit(
        actor=user,
        team=team,
        kind="train",
        spec={
            "model": model.pk,
            "dataset": dataset.pk,
            "epochs": args.epochs,
            "schedule": "cosine",
            "learning_rate": 1e-3,
            "seed": 0,
        },
    )
    job.refresh_from_db()
    if job.status != "succeeded":
        raise RuntimeError(f"training ended {job.status}: {job.status_reason}")
    return user, team, model.versions.get(number=job.result["version"]), version


def _experiment(user, team, base, dataset_version, strategy: str, args):
    from apps.experiments.search import default_space, grid_recipes
    from apps.experiments.services import experiment_create

    recipes = grid_recipes(default_space(args.objective)) if strategy == "grid" else None
    started = time.perf_counter()
    experiment = experiment_create(
        actor=user,
        team=team,
        name=strategy,
        base_version=base,
        train_dataset_version=dataset_version,
        max_accuracy_drop=args.drop,
        objective=args.objective,
        strategy=strategy,
        budget=len(recipes) if recipes else args.budget,
        recipes=recipes,
        finetune_epochs=args.finetune_epochs,
        learning_rate=args.learning_rate,
    )
    experiment.refresh_from_db()
    return experiment, time.perf_counter() - started


def _print_trials(experiment) -> None:
    print(f"\n{experiment.name}: {experiment.status} {experiment.status_reason}")
    print(f"{'#':>3}  {'recipe':<40} {'accuracy':>9} {'bytes':>10} {'non-zeros':>10} {'FLOPs':>10} {'ms':>7}  target")
    for t in experiment.trials.order_by("number"):
        if t.accuracy is None:
            print(f"{t.number:>3}  {t.label:<40} {t.status} {t.error[:60]}")
            continue
        mark = "*" if t.pk == experiment.recommended_id else ""
        print(
            f"{t.number:>3}  {t.label:<40} {100 * t.accuracy:>8.2f}% {t.artifact_bytes:>10,} "
            f"{t.nonzero_parameters:>10,} {t.flops_per_sample:>10,} {t.latency_ms:>7.3f}  "
            f"{'within' if t.within_target else 'below' if t.number else 'base'} {mark}"
        )


def _smoke_verdict(*experiments) -> int:
    """What holds at any size: each experiment succeeded and measured every trial it ran."""
    from apps.experiments.models import ExperimentStatus

    problems = [
        f"{e.name}: {e.status} {e.status_reason}".strip() for e in experiments if e.status != ExperimentStatus.SUCCEEDED
    ]
    problems += [
        f"{e.name} trial {t.number} ({t.label}): {t.status} {t.error[:200]}".strip()
        for e in experiments
        for t in e.trials.filter(accuracy__isnull=True).order_by("number")
    ]
    print("--smoke: which model is recommended is noise at this size; judged: experiments succeeded, trials measured")
    for problem in problems:
        print(f"FAIL  {problem}")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--informative", type=int, default=20)
    parser.add_argument("--hidden", default="256,256")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--drop", type=float, default=1.0)
    parser.add_argument("--objective", default="size", choices=["size", "latency"])
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--smoke", action="store_true", help="CI's quick run at the smallest sizes (docstring)")
    args = parser.parse_args()
    if args.smoke:  # smoke sizes replace the defaults only; flags given still win
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _setup_django(Path(tmp))
        started = time.perf_counter()
        user, team, base, dataset_version = _fixtures(args)
        print(f"base: {base} trained in {time.perf_counter() - started:.0f} s")
        grid, grid_seconds = _experiment(user, team, base, dataset_version, "grid", args)
        auto, auto_seconds = _experiment(user, team, base, dataset_version, "auto", args)
        _print_trials(grid)
        _print_trials(auto)
        grid_trials = grid.trials.exclude(number=0).count()
        auto_trials = auto.trials.exclude(number=0).count()
        grid_best = grid.recommended.recipe_key if grid.recommended else None
        auto_best = auto.recommended.recipe_key if auto.recommended else None
        same = grid_best is not None and grid_best == auto_best
        print("\n| strategy | trials | wall time | recommended | bytes | accuracy |")
        print("|---|---:|---:|---|---:|---:|")
        for experiment, trials, seconds in ((grid, grid_trials, grid_seconds), (auto, auto_trials, auto_seconds)):
            best = experiment.recommended
            print(
                f"| {experiment.name} | {trials} | {seconds:.0f} s | {best.label if best else '-'} | "
                f"{f'{best.artifact_bytes:,}' if best else '-'} | {f'{100 * best.accuracy:.2f}%' if best else '-'} |"
            )
        ratio = auto_trials / max(grid_trials, 1)
        print(
            f"\nauto ran {auto_trials} of the grid's {grid_trials} trials ({ratio:.2f}x); "
            f"same recommended model: {same}"
        )
        if args.smoke:
            return _smoke_verdict(grid, auto)
        return 0 if same and ratio <= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
