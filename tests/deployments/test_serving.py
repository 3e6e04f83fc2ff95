"""Serving pieces on their own: input checks, image decoding, top-k, the LRU module cache, latency buckets."""

import io
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from apps.deployments import stats
from apps.deployments.cache import ModelCache
from apps.deployments.serving import InputError, image_array, inputs_array, top_k


def _error(raw, shape=(4,), max_batch=8) -> str:
    with pytest.raises(InputError) as caught:
        inputs_array(raw, shape, max_batch=max_batch)
    return str(caught.value)


def test_a_batch_of_vectors_becomes_a_float32_array():
    array = inputs_array([[1, 2, 3, 4], [5.5, 6, 7, 8]], (4,), max_batch=8)
    assert array.dtype == np.float32
    assert array.shape == (2, 4)


def test_wrong_sample_shape_is_named_with_the_expected_shape():
    assert _error([[1, 2, 3]]) == "inputs: each sample must have shape [4]; got [3] (a batch of shape [1, 3])"


def test_ragged_batch_names_the_sample_at_fault():
    assert _error([[1, 2, 3, 4], [1, 2, 3]]) == (
        "inputs: inputs[1]: expected 4 values, got 3 (each sample has shape [4])"
    )


def test_wrong_type_names_the_value_and_its_place():
    assert _error([[1, 2, "x", 4]]) == (
        "inputs: inputs[0][2]: expected a number, got the string 'x' (each sample has shape [4])"
    )
    assert "inputs[0][0]: expected a number, got true" in _error([[True, False, True, True]])
    assert "inputs[1][3]: expected a number, got null" in _error([[1, 2, 3, 4], [1, 2, 3, None]])
    assert _error({"a": 1}) == "inputs: expected a list of samples, got an object"


def test_too_large_a_batch_and_an_empty_one_are_refused():
    assert _error([[0, 0, 0, 0]] * 9) == "inputs: a batch holds at most 8 samples; got 9"
    assert _error([]) == "inputs: send at least one sample"
    assert _error(None) == "inputs: this field is required: a list of samples"


def test_one_sample_without_the_batch_list_gets_a_hint():
    assert "wrap one sample in [ ]" in _error([1, 2, 3, 4])


def test_one_channel_images_may_leave_the_channel_out():
    with_channel = inputs_array([np.zeros((1, 8, 8)).tolist()], (1, 8, 8), max_batch=4)
    without = inputs_array([np.zeros((8, 8)).tolist()], (1, 8, 8), max_batch=4)
    assert with_channel.shape == without.shape == (1, 1, 8, 8)
    assert "each sample must have shape [1, 8, 8]; got [8, 7]" in _error([np.zeros((8, 7)).tolist()], (1, 8, 8))


def _png(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_uploaded_image_is_converted_and_resized_for_the_model():
    rgb = np.zeros((32, 32, 3), dtype=np.uint8)
    rgb[:, :, 0] = 255  # pure red: luminance 76
    gray = image_array(_png(rgb, "RGB"), (1, 8, 8))
    assert gray.shape == (1, 8, 8)
    assert np.allclose(gray, 76)
    color = image_array(_png(rgb, "RGB"), (3, 16, 16))
    assert color.shape == (3, 16, 16)
    assert color[0].min() == 255
    assert color[1].max() == 0


def test_an_unreadable_image_or_a_tabular_model_is_refused():
    with pytest.raises(InputError, match="image: not a readable PNG or JPEG image"):
        image_array(b"not an image", (1, 8, 8))
    with pytest.raises(InputError, match=r"takes feature vectors of shape \[4\], not images"):
        image_array(_png(np.zeros((8, 8)), "L"), (4,))


def test_top_k_orders_classes_with_their_names():
    probs = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    result = top_k(probs, 2, ["setosa", "versicolor", "virginica"])
    assert [s["name"] for s in result[0]["top_k"]] == ["versicolor", "virginica"]
    assert [s["index"] for s in result[1]["top_k"]] == [0, 2]
    assert result[0]["top_k"][0]["probability"] == pytest.approx(0.7)


def test_cache_evicts_the_least_recently_used_module():
    cache = ModelCache(2)
    loads = []

    def loader(name):
        return lambda: loads.append(name) or torch.nn.Linear(1, 1)

    a = cache.get("a", loader("a"))
    cache.get("b", loader("b"))
    assert cache.get("a", loader("a")) is a  # a hit: "a" is now the most recent
    cache.get("c", loader("c"))  # evicts "b", the least recently used
    assert cache.cached_keys() == ["a", "c"]
    cache.get("b", loader("b"))
    assert loads == ["a", "b", "c", "b"]
    assert (cache.stats.hits, cache.stats.loads, cache.stats.evictions) == (1, 4, 2)


def test_cache_size_follows_its_setting(settings):
    from apps.deployments.cache import MODELS

    settings.LEPTON_DEPLOYMENT_CACHE_SIZE = 3
    assert MODELS.max_size == 3


def test_concurrent_first_requests_load_a_version_once():
    cache = ModelCache(4)
    loads = []

    def slow_load():
        loads.append(1)
        time.sleep(0.2)
        return torch.nn.Linear(1, 1)

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("v1", slow_load))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert all(module is results[0] for module in results)


def test_a_slow_load_does_not_hold_up_hits_on_other_versions():
    cache = ModelCache(4)
    cache.get("fast", lambda: torch.nn.Linear(1, 1))
    started = threading.Event()

    def slow_load():
        started.set()
        time.sleep(1.0)
        return torch.nn.Linear(1, 1)

    thread = threading.Thread(target=lambda: cache.get("slow", slow_load))
    thread.start()
    started.wait()
    begin = time.perf_counter()
    cache.get("fast", lambda: pytest.fail("should be a hit"))
    assert time.perf_counter() - begin < 0.5  # the other version's load (1 s) holds no lock a hit needs
    thread.join()


@pytest.mark.parametrize("latency", [0.2, 1.0, 3.7, 12.5, 250.0, 4000.0])
def test_latency_buckets_read_back_within_five_percent(latency):
    value = stats.bucket_value(stats.bucket_index(latency))
    assert abs(value - latency) / latency < 0.05


def test_percentiles_by_nearest_rank():
    latencies = [1.0] * 90 + [10.0] * 9 + [100.0]
    counts = {}
    for latency in latencies:
        index = stats.bucket_index(latency)
        counts[index] = counts.get(index, 0) + 1
    assert stats.percentile(counts, 0.5) == pytest.approx(1.0, rel=0.05)
    assert stats.percentile(counts, 0.95) == pytest.approx(10.0, rel=0.05)
    assert stats.percentile(counts, 0.999) == pytest.approx(100.0, rel=0.05)
    assert stats.percentile({}, 0.5) is None


@pytest.mark.django_db
def test_request_statistics_past_their_retention_are_pruned(world, iris_deployment, settings):
    from datetime import timedelta

    from django.utils import timezone

    from apps.deployments.models import RequestBucket
    from apps.deployments.tasks import prune_request_stats

    settings.LEPTON_DEPLOYMENT_STATS_DAYS = 7
    now = timezone.now().replace(second=0, microsecond=0)
    for days in (8, 6):
        RequestBucket.objects.create(
            deployment=iris_deployment, minute=now - timedelta(days=days), bucket=3, requests=1
        )
    stats.record(iris_deployment.pk, 1.0, error=False)

    assert prune_request_stats() == 1
    assert sorted((now - row.minute).days for row in RequestBucket.objects.all()) == [0, 6]


@pytest.mark.django_db
def test_the_prune_runs_daily_on_the_workers():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="deployments: prune request statistics")
    assert (schedule.func, schedule.schedule_type) == ("apps.deployments.tasks.prune_request_stats", "D")
