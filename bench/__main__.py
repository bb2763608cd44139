"""`make bench`: every benchmark, one after another."""

from bench import appliance_bench

appliance_bench.main()
