"""`make bench`: bring up one appliance from an empty home (timing it), then run every benchmark."""

from bench import appliance_bench, service_bench

appliance_bench.main(extra=[service_bench.main])
