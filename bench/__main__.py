"""`make bench`: bring up one appliance from an empty home (timing it), then run every benchmark."""

import importlib

from bench import appliance_bench

# Each module defines main(settings); they run on the appliance that appliance_bench brought up.
MODULES = [
    "service_bench",
    "tap_bench",
    "image_bench",
    "voila_bench",
    "classroom",
    "classroom_hub",
    "nbtest_bench",
    "load_bench",
    "hub_bench",
]

extra = []
for name in MODULES:
    try:
        extra.append(importlib.import_module(f"bench.{name}").main)
    except ModuleNotFoundError as exc:
        if exc.name != f"bench.{name}":
            raise
appliance_bench.main(extra=extra)
