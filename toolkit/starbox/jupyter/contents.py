"""JupyterLab's file manager for the work folder: notebooks-latest/ and the welcome page are
read-only, whoever runs the server (root included), and say so in the browser."""

from __future__ import annotations

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado.web import HTTPError

from .paths import LESSON_COPY, READ_ONLY_DIR, WELCOME


def under_read_only(path: str) -> bool:
    parts = [p for p in (path or "").strip("/").split("/") if p]
    return bool(parts) and (parts[0] == READ_ONLY_DIR or parts == [WELCOME])


def refuse(path: str):
    if path.strip("/") == WELCOME:
        raise HTTPError(
            403,
            f"{WELCOME} is rebuilt each time Starbox starts, so it cannot be changed. "
            "Use File > Save Notebook As... to keep a copy.",
        )
    raise HTTPError(
        403,
        f"{READ_ONLY_DIR}/ holds the published lessons and is read-only. "
        f"Your own copies are in {LESSON_COPY}/; or use File > Save Notebook As...",
    )


class LessonsContentsManager(AsyncLargeFileManager):
    """Jupyter's file manager, with notebooks-latest/ (and the welcome page) read-only."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if under_read_only(path):
            model["writable"] = False
        if model.get("type") == "directory" and isinstance(model.get("content"), list):
            for item in model["content"]:
                if under_read_only(item.get("path", "")):
                    item["writable"] = False
        return model

    async def save(self, model, path=""):
        if under_read_only(path):
            refuse(path)
        return await super().save(model, path)

    async def delete_file(self, path):
        if under_read_only(path) or path.strip("/") == READ_ONLY_DIR:
            refuse(path)
        return await super().delete_file(path)

    async def rename_file(self, old_path, new_path):
        for p in (old_path, new_path):
            if under_read_only(p) or p.strip("/") == READ_ONLY_DIR:
                refuse(p)
        return await super().rename_file(old_path, new_path)

    async def new_untitled(self, path="", type="", ext=""):
        if under_read_only(path + "/x"):
            refuse(path)
        return await super().new_untitled(path=path, type=type, ext=ext)

    async def create_checkpoint(self, path):
        if under_read_only(path):
            refuse(path)
        return await super().create_checkpoint(path)

    async def restore_checkpoint(self, checkpoint_id, path):
        if under_read_only(path):
            refuse(path)
        return await super().restore_checkpoint(checkpoint_id, path)

    async def delete_checkpoint(self, checkpoint_id, path):
        if under_read_only(path):
            refuse(path)
        return await super().delete_checkpoint(checkpoint_id, path)
