"""Benchmarks, run by `make bench` (never by `make test`). Ratios are against the bare database
measured in the same run, because absolute times do not compare across these noisy machines."""
