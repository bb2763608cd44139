"""JupyterLab's file manager for the work folder: notebooks-latest/ and the welcome page are
read-only, whoever runs the server (root included), and say so in the browser; storage/ is the
user's Starbox storage, through the service's API (storage_folder.py)."""

from __future__ import annotations

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupyter_server.services.contents.manager import AsyncContentsManager
from tornado.web import HTTPError

from .paths import LESSON_COPY, READ_ONLY_DIR, STORAGE_DIR, WELCOME
from .storage_folder import StorageAPI, StorageFolder, storage_part


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
    """Jupyter's file manager, with notebooks-latest/ (and the welcome page) read-only, and
    storage/ served by the Starbox storage service (when the lab has a Starbox login)."""

    _storage: StorageFolder | None = None
    _storage_checked = False

    def storage(self, path: str) -> StorageFolder | None:
        """The storage folder when `path` is in it (and the lab has a login), else None."""
        if storage_part(path) is None:
            return None
        if not self._storage_checked:
            api = StorageAPI.from_env()
            self._storage = StorageFolder(self, api) if api else None
            self._storage_checked = True
        return self._storage

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        folder = self.storage(path)
        if folder:
            return await folder.get(path, content, type, format)
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if under_read_only(path):
            model["writable"] = False
        if model.get("type") == "directory" and isinstance(model.get("content"), list):
            for item in model["content"]:
                if under_read_only(item.get("path", "")):
                    item["writable"] = False
            if not path.strip("/") and self.storage(STORAGE_DIR):  # storage/ shadows a real folder
                model["content"] = [i for i in model["content"] if i.get("name") != STORAGE_DIR]
                model["content"].append(self.storage(STORAGE_DIR).listing_entry())
        return model

    async def save(self, model, path=""):
        folder = self.storage(path)
        if folder:
            return await folder.save(model, path)
        if under_read_only(path):
            refuse(path)
        return await super().save(model, path)

    async def delete_file(self, path):
        folder = self.storage(path)
        if folder:
            return await folder.delete(path)
        if under_read_only(path) or path.strip("/") == READ_ONLY_DIR:
            refuse(path)
        return await super().delete_file(path)

    async def rename_file(self, old_path, new_path):
        for p in (old_path, new_path):
            if under_read_only(p) or p.strip("/") == READ_ONLY_DIR:
                refuse(p)
        old, new = self.storage(old_path), self.storage(new_path)
        if old and new:
            return await old.rename(old_path, new_path)
        if old or new:  # across the boundary: a file is copied over, then removed where it was
            model = await self.get(old_path, content=True)
            if model["type"] == "directory":
                raise HTTPError(400, f"Folders cannot be moved in or out of {STORAGE_DIR}/; move the files one by one")
            await self.save(model, new_path)
            return await self.delete_file(old_path)
        return await super().rename_file(old_path, new_path)

    async def copy(self, from_path, to_path=None):
        if self.storage(from_path) or (to_path and self.storage(to_path)):
            if (await self.get(from_path, content=False))["type"] == "directory":
                raise HTTPError(400, f"Folders cannot be copied in or out of {STORAGE_DIR}/; copy the files one by one")
            return await AsyncContentsManager.copy(self, from_path=from_path, to_path=to_path)  # get, then save
        return await super().copy(from_path, to_path)

    async def dir_exists(self, path):
        folder = self.storage(path)
        return await folder.exists(path, "directory") if folder else await super().dir_exists(path)

    async def file_exists(self, path=""):
        folder = self.storage(path)
        return await folder.exists(path, "file") if folder else await super().file_exists(path)

    async def is_hidden(self, path):
        return False if self.storage(path) else await super().is_hidden(path)

    async def new_untitled(self, path="", type="", ext=""):
        if under_read_only(path + "/x"):
            refuse(path)
        return await super().new_untitled(path=path, type=type, ext=ext)

    async def get_kernel_path(self, path, model=None):
        if self.storage(path):  # a notebook in storage runs in the home: storage is not on disk
            return ""
        return await super().get_kernel_path(path, model=model)

    # --- checkpoints: storage's in the home (storage_folder.StorageCheckpoints) ----------------
    def _checkpoints(self, path):
        folder = self.storage(path)
        return folder.checkpoints if folder else self.checkpoints

    async def create_checkpoint(self, path):
        if under_read_only(path):
            refuse(path)
        return await self._checkpoints(path).create_checkpoint(self, path)

    async def list_checkpoints(self, path):
        return await self._checkpoints(path).list_checkpoints(path)

    async def restore_checkpoint(self, checkpoint_id, path):
        if under_read_only(path):
            refuse(path)
        return await self._checkpoints(path).restore_checkpoint(self, checkpoint_id, path)

    async def delete_checkpoint(self, checkpoint_id, path):
        if under_read_only(path):
            refuse(path)
        return await self._checkpoints(path).delete_checkpoint(checkpoint_id, path)
