"""Factories for test data. Teams come with their quota on the default plan."""

import factory
from django.contrib.auth import get_user_model

from apps.accounts.models import Membership, Role, Team
from apps.accounts.plans import quota_ensure
from apps.accounts.tokens import token_create

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ["slug"]
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.replace("-", " ").title())
    with_quota = factory.PostGeneration(
        lambda team, create, extracted, **kwargs: quota_ensure(team) if create else None
    )


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = Role.MEMBER


def member(team: Team, username: str, role: str = Role.MEMBER):
    """A user named `username` with `role` in `team`."""
    user = UserFactory(username=username)
    MembershipFactory(user=user, team=team, role=role)
    return user


def bearer(user, name: str = "test") -> dict:
    """Headers for the test client that authenticate as `user` with a fresh token."""
    _, secret = token_create(user=user, name=name)
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def dataset_with_version(team, *, bundled: str = "iris", name: str | None = None, creator=None, params=None):
    """A dataset of `team` with one version ingested from a bundled set by the service an ingest job runs."""
    from apps.datasets import services
    from apps.datasets.models import Dataset, DatasetVersion, Task
    from apps.datasets.sources import validate_options

    task = Task.IMAGE_CLASSIFICATION if bundled == "digits" else Task.TABULAR_CLASSIFICATION
    dataset = Dataset.objects.create(
        team=team, name=name or f"{bundled}-{Dataset.objects.count()}", task=task, created_by=creator
    )
    options = validate_options("bundled", task, {"name": bundled, "params": params or {}})
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=1,
        source_format="bundled",
        source_name=bundled,
        source_options=options,
        created_by=creator,
    )
    return dataset, services.version_ingest(version)


def trained_module(spec: dict, dataset_version, *, steps: int = 30, seed: int = 0):
    """A module of `spec` trained a few steps on the dataset version's train split."""
    import torch

    from apps.datasets.selectors import version_splits
    from apps.registry.architectures import build_model

    torch.manual_seed(seed)
    module = build_model(
        spec, input_shape=tuple(dataset_version.sample_shape), num_classes=len(dataset_version.class_names)
    )
    train, _, _ = version_splits(dataset_version)
    x, y = train.tensors()
    optimizer = torch.optim.Adam(module.parameters(), lr=0.01)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(module(x), y).backward()
        optimizer.step()
    return module.eval()


def model_with_version(team, dataset_version, *, spec=None, name=None, creator=None, steps=30):
    """A model of `team` with one ready version trained a little on `dataset_version`."""
    from apps.registry import services
    from apps.registry.architectures import validate_spec
    from apps.registry.models import Model, VersionSource

    spec = validate_spec(spec or {"family": "mlp", "hidden_sizes": [32]}, task=dataset_version.dataset.task)
    model = Model.objects.create(
        team=team,
        name=name or f"model-{Model.objects.count()}",
        task=dataset_version.dataset.task,
        architecture=spec,
        dataset=dataset_version.dataset,
        created_by=creator,
    )
    module = trained_module(spec, dataset_version, steps=steps)
    version = services.version_from_weights(
        actor=creator,
        model=model,
        weights=module.state_dict(),
        spec=spec,
        dataset_version=dataset_version,
        source=VersionSource.TRAIN,
    )
    return model, version, module


def online_node(
    name: str = "cpu-1",
    *,
    slots: int = 8,
    gpus: int = 0,
    pool: str = "default",
    gpu_model: str = "test GPU",
    gpu_memory: int = 0,
):
    """A node that heartbeats now, with `gpus` (pretend) GPUs and `slots` worker slots."""
    from django.utils import timezone

    from apps.nodes.models import Gpu, Node

    node, _ = Node.objects.update_or_create(
        name=name,
        defaults={"pool": pool, "worker_slots": slots, "status": "online", "last_heartbeat_at": timezone.now()},
    )
    for index in range(gpus):
        Gpu.objects.get_or_create(
            node=node, index=index, defaults={"model_name": gpu_model, "memory_total_bytes": gpu_memory}
        )
    return node


def experiment_row(team, base_version, dataset_version, **fields):
    """An Experiment row as it stands after a run (no jobs): lists, pages, tenancy and CSV tests build on it."""
    from apps.experiments.models import Experiment

    defaults = {"max_accuracy_drop": 1, "budget": 1, "eval_dataset_version": dataset_version}
    return Experiment.objects.create(
        team=team, base_version=base_version, train_dataset_version=dataset_version, **{**defaults, **fields}
    )
