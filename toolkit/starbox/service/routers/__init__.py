"""The routers and where they are mounted. Each module is a thin layer over plain functions."""

from __future__ import annotations

import importlib

# (module under starbox.service.routers, prefix); optional ones are skipped until they exist.
MOUNTS = [
    ("auth", "/auth"),
    ("query", "/query"),
    ("mydb", "/query"),
    ("res", "/res"),
    ("storage", "/storage"),
    ("tap", "/tap"),
    ("scs", "/scs"),
    ("hooks", "/hooks"),
]


def ROUTERS():
    for name, prefix in MOUNTS:
        try:
            module = importlib.import_module(f"starbox.service.routers.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"starbox.service.routers.{name}":
                continue
            raise
        yield module.router, prefix
