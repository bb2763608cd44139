"""The routers and where they are mounted. Each module is a thin layer over plain functions."""

from __future__ import annotations

import importlib

# (module under starbox.service.routers, prefix)
MOUNTS = [
    ("auth", "/auth"),
    ("query", "/query"),
    ("mydb", "/query"),
    ("res", "/res"),
    ("storage", "/storage"),
    ("tap", "/tap"),
    ("scs", "/scs"),
    ("hooks", "/hooks"),
    ("sia", "/sia"),  # images: SIA 1.0 and Data Lab's cutout service, where Data Lab has them
    ("svc", "/svc"),
]


def ROUTERS():
    for name, prefix in MOUNTS:
        module = importlib.import_module(f"starbox.service.routers.{name}")
        yield module.router, prefix
