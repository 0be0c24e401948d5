"""The GC pause probe: a collection shows up on /metrics, and the callback is installed once
per process however many applications export it."""

from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry

from sneakerd.web import gcprobe
from sneakerd.web.metrics import Metrics


def sample(registry: CollectorRegistry, name: str, generation: str) -> float:
    value = registry.get_sample_value(name, {"generation": generation})
    return 0.0 if value is None else value


def test_a_full_collection_is_counted_with_its_pause() -> None:
    metrics = Metrics()
    metrics.watch_gc()
    r = metrics.registry
    before = sample(r, "sneakerd_gc_pause_seconds_count", "2")
    total_before = sample(r, "sneakerd_gc_pause_seconds_sum", "2")
    gc.collect(2)
    gc.collect(2)
    assert sample(r, "sneakerd_gc_pause_seconds_count", "2") == before + 2
    took = sample(r, "sneakerd_gc_pause_seconds_sum", "2") - total_before
    assert took > 0
    longest = sample(r, "sneakerd_gc_pause_longest_seconds", "2")
    assert longest >= took / 2  # at least one of the two took half of their sum
    # Every pause falls in a bucket: the +Inf bucket is the count.
    inf = r.get_sample_value("sneakerd_gc_pause_seconds_bucket", {"generation": "2", "le": "+Inf"})
    assert inf == before + 2


def test_a_young_collection_is_counted_under_its_own_generation() -> None:
    metrics = Metrics()
    metrics.watch_gc()
    r = metrics.registry
    young = sample(r, "sneakerd_gc_pause_seconds_count", "0")
    full = sample(r, "sneakerd_gc_pause_seconds_count", "2")
    gc.collect(0)
    assert sample(r, "sneakerd_gc_pause_seconds_count", "0") >= young + 1
    # A young collection is not counted as a full one (an automatic full pass could run in
    # between only if this test allocated enough to trigger it; it does not).
    assert sample(r, "sneakerd_gc_pause_seconds_count", "2") == full


def test_the_callback_is_installed_once_per_process() -> None:
    first = gcprobe.install()
    for _ in range(3):
        Metrics().watch_gc()
    assert gcprobe.install() is first
    assert gc.callbacks.count(first.callback) == 1


def test_every_application_registry_shows_the_same_record() -> None:
    a, b = Metrics(), Metrics()
    a.watch_gc()
    b.watch_gc()
    gc.collect(1)
    name = "sneakerd_gc_pause_seconds_count"
    assert sample(a.registry, name, "1") == sample(b.registry, name, "1") > 0
