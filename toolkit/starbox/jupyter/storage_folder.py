"""The user's Starbox storage (vos://) as the folder storage/ in JupyterLab.

Every read and write goes through the service's storage API with the lab's own token, so the
service stays the one owner of the files: its quota, its size caps and its atomic writes hold for
a file saved in the lab exactly as for `sc.put`, and `sc.ls` sees what the lab saved the moment it
is saved. Nothing here touches the storage tree on disk (in shared mode the lab's Unix user could
not, and must not, reach it).

A notebook's kernel sees no storage/ folder on disk: code uses `sc.get` / `sc.put` (or vos://
names in the toolkit), as in Data Lab. Checkpoints of storage files are kept in the user's home
(~/.starbox/lab/checkpoints), never in storage, so they cost no quota.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import mimetypes
import os
from pathlib import Path

import httpx
import nbformat
from jupyter_server.services.contents.filecheckpoints import AsyncGenericFileCheckpoints
from tornado.web import HTTPError

from .paths import STORAGE_DIR

TIMEOUT = httpx.Timeout(120.0, connect=10.0)


def storage_part(path: str) -> str | None:
    """The path inside storage ('' for the folder itself), or None for a path outside it."""
    parts = [p for p in (path or "").strip("/").split("/") if p]
    if not parts or parts[0] != STORAGE_DIR:
        return None
    if any(p in (".", "..") for p in parts):
        raise HTTPError(400, f"{path}: '.' and '..' are not allowed in a storage path")
    return "/".join(parts[1:])


def _when(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)


class StorageAPI:
    """The service's /storage endpoints, as the lab's user (STARBOX_URL, STARBOX_TOKEN)."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url.rstrip("/"), token

    @classmethod
    def from_env(cls) -> StorageAPI | None:
        url, token = os.environ.get("STARBOX_URL"), os.environ.get("STARBOX_TOKEN")
        return cls(url, token) if url and token else None

    async def _send(self, method: str, url: str, headers: dict | None = None, **kw) -> httpx.Response:
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT) as client:
                r = await client.request(method, url, headers={"X-DL-AuthToken": self.token, **(headers or {})}, **kw)
        except httpx.HTTPError as exc:
            raise HTTPError(503, f"Starbox storage is not answering ({type(exc).__name__}); try again") from None
        if r.status_code >= 400:
            message = r.text.strip() or f"storage answered {r.status_code}"
            if message.startswith("{"):  # the service's JSON errors
                try:
                    message = json.loads(message).get("detail", message)
                except ValueError:
                    pass
            # the service's own words; a fault on its side is the lab's 502, never a bare 500
            raise HTTPError(r.status_code if r.status_code < 500 else 502, str(message).removeprefix("Error: "))
        return r

    async def call(self, endpoint: str, **params) -> httpx.Response:
        return await self._send("GET", f"{self.url}/storage/{endpoint}", params=params)

    async def entries(self, rel: str) -> list[dict]:
        r = await self.call("ls", name=f"vos://{rel}", format="json")
        return json.loads(r.text)

    async def lookup(self, rel: str) -> tuple[str | None, dict | None]:
        """('directory' | 'file' | None when nothing is there, a file's listing entry)."""
        if not rel:
            return "directory", None
        r = await self.call("isdir", name=f"vos://{rel}")
        if r.text.strip() == "True":
            return "directory", None
        found = await self.entry(rel)
        return (found["type"], found) if found else (None, None)

    async def kind(self, rel: str) -> str | None:
        return (await self.lookup(rel))[0]

    async def entry(self, rel: str) -> dict | None:
        parent, _, name = rel.rpartition("/")
        try:
            return next((e for e in await self.entries(parent) if e["name"] == name), None)
        except HTTPError as exc:
            if exc.status_code == 404:
                return None
            raise

    async def read(self, rel: str) -> bytes:
        signed = (await self.call("get", name=f"vos://{rel}")).text.strip()
        return (await self._send("GET", signed)).content

    async def write(self, rel: str, data: bytes | Path) -> None:
        """Store `data` (bytes, or a file's) at vos://rel: the service writes it whole or not at
        all, and refuses it past the quota (before reading it: the length goes first)."""
        signed = (await self.call("put", name=f"vos://{rel}")).text.strip()
        size = len(data) if isinstance(data, bytes) else data.stat().st_size
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        body = data if isinstance(data, bytes) else _blocks(data)
        await self._send("PUT", signed, content=body, headers=headers)


async def _blocks(path: Path, size: int = 1 << 20):
    with path.open("rb") as fh:
        while block := await asyncio.to_thread(fh.read, size):
            yield block


class StorageCheckpoints(AsyncGenericFileCheckpoints):
    """Checkpoints of storage/ files, in a private folder of the user's home."""

    def checkpoint_path(self, checkpoint_id, path):
        rel = Path(path.strip("/"))
        folder = Path(self.root_dir) / rel.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return str(folder / f"{rel.stem}-{checkpoint_id}{rel.suffix}")


class StorageFolder:
    """storage/ for a contents manager: models in, models out (Jupyter's contents API)."""

    def __init__(self, manager, api: StorageAPI):
        self.manager, self.api = manager, api
        home = Path(os.environ.get("STARBOX_HOME") or Path.home() / ".starbox")
        self.stage_dir = home / "lab" / "uploads"
        self.checkpoints = StorageCheckpoints(parent=manager, root_dir=str(home / "lab" / "checkpoints"))

    # --- reading -------------------------------------------------------------------------------
    def _base(self, path: str, kind: str, entry: dict | None) -> dict:
        when = _when(entry["mtime"]) if entry else dt.datetime.now(dt.timezone.utc)
        return {
            "name": path.rstrip("/").rsplit("/", 1)[-1],
            "path": path.strip("/"),
            "type": kind,
            "writable": True,
            "created": when,
            "last_modified": when,
            "size": entry.get("size") if entry and kind != "directory" else None,
            "mimetype": None,
            "content": None,
            "format": None,
            "hash": None,
            "hash_algorithm": None,
        }

    def listing_entry(self) -> dict:
        """storage/ itself, as an item of the home folder's listing."""
        return self._base(STORAGE_DIR, "directory", None)

    async def get(self, path: str, content: bool, type: str | None, format: str | None) -> dict:
        rel = storage_part(path)
        assert rel is not None
        kind, entry = await self.api.lookup(rel)
        if kind is None:
            raise HTTPError(404, f"No such file or directory: {path}")
        if kind == "directory":
            if type not in (None, "directory"):
                raise HTTPError(400, f"{path} is a directory, not a {type}", reason="bad type")
            model = self._base(path, "directory", await self.api.entry(rel) if rel else None)
            if content:
                items = []
                for e in await self.api.entries(rel):
                    child = f"{path.strip('/')}/{e['name']}"
                    is_dir = e["type"] == "directory"
                    item_kind = "directory" if is_dir else ("notebook" if e["name"].endswith(".ipynb") else "file")
                    items.append(self._base(child, item_kind, e))
                model.update(content=items, format="json")
            return model
        if type == "directory":
            raise HTTPError(400, f"{path} is not a directory", reason="bad type")
        as_notebook = type == "notebook" or (type is None and path.endswith(".ipynb"))
        model = self._base(path, "notebook" if as_notebook else "file", entry)
        if not content:
            return model
        data = await self.api.read(rel)
        if as_notebook:
            try:
                nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            except Exception as exc:
                raise HTTPError(400, f"{path} is not a notebook Jupyter can read: {exc}") from None
            self.manager.mark_trusted_cells(nb, path)
            model.update(content=nb, format="json")
            self.manager.validate_notebook_model(model)
            return model
        if format != "base64":
            try:
                text = data.decode("utf-8")
                model.update(content=text, format="text", mimetype="text/plain")
                return model
            except UnicodeDecodeError:
                if format == "text":
                    raise HTTPError(400, f"{path} is not UTF-8 text", reason="bad format") from None
        model.update(
            content=base64.b64encode(data).decode("ascii"),
            format="base64",
            mimetype=mimetypes.guess_type(path)[0] or "application/octet-stream",
        )
        return model

    # --- writing -------------------------------------------------------------------------------
    @staticmethod
    def _bytes(model: dict, path: str) -> bytes:
        kind = model.get("type")
        if kind == "notebook":
            nb = nbformat.from_dict(model["content"])
            return (nbformat.writes(nb, version=nbformat.NO_CONVERT) + "\n").encode("utf-8")
        fmt, content = model.get("format"), model.get("content")
        if content is None:
            raise HTTPError(400, "No file content provided")
        try:
            if fmt == "text":
                return content.encode("utf-8")
            if fmt == "base64":
                return base64.b64decode(content.encode("ascii"))
        except (ValueError, UnicodeError) as exc:
            raise HTTPError(400, f"Encoding error saving {path}: {exc}") from None
        raise HTTPError(400, "Must specify format of file contents as 'text' or 'base64'")

    def _stage(self, path: str) -> Path:
        self.stage_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.stage_dir / hashlib.sha256(path.encode()).hexdigest()[:32]

    async def save(self, model: dict, path: str) -> dict:
        rel = storage_part(path)
        if not rel:
            raise HTTPError(400, f"{STORAGE_DIR}/ itself cannot be saved over")
        kind = model.get("type")
        if kind not in ("notebook", "file", "directory"):
            raise HTTPError(400, "No file type provided")
        if kind == "directory":
            if await self.api.kind(rel) != "directory":
                await self.api.call("mkdir", dir=f"vos://{rel}")
            return await self.get(path, content=False, type="directory", format=None)
        if kind == "notebook":
            self.manager.check_and_sign(nbformat.from_dict(model["content"]), path)
        chunk = model.get("chunk")
        if chunk is None:
            await self.api.write(rel, self._bytes(model, path))
        else:
            # JupyterLab uploads big files in chunks: they gather in the home, and storage gets
            # the whole file after the last one (or nothing, if the upload stops half-way).
            if kind != "file":
                raise HTTPError(400, f'File type "{kind}" is not supported for large file transfer')
            stage = self._stage(path)
            with stage.open("wb" if chunk == 1 else "ab") as out:
                out.write(self._bytes(model, path))
            if chunk != -1:
                return self._base(path, "file", {"mtime": stage.stat().st_mtime, "size": stage.stat().st_size})
            try:
                await self.api.write(rel, stage)
            finally:
                stage.unlink(missing_ok=True)
        return await self.get(path, content=False, type=kind, format=None)

    async def delete(self, path: str) -> None:
        rel = storage_part(path)
        if not rel:
            raise HTTPError(400, f"{STORAGE_DIR}/ is your Starbox storage and cannot be deleted")
        kind = await self.api.kind(rel)
        if kind is None:
            raise HTTPError(404, f"File or directory does not exist: {path}")
        await self.api.call("rmdir" if kind == "directory" else "rm", name=f"vos://{rel}")

    async def rename(self, old_path: str, new_path: str) -> None:
        old, new = storage_part(old_path), storage_part(new_path)
        if not old or not new:
            raise HTTPError(400, f"{STORAGE_DIR}/ itself cannot be renamed")
        await self.api.call("mv", **{"from": f"vos://{old}", "to": f"vos://{new}"})

    async def exists(self, path: str, kind: str) -> bool:
        rel = storage_part(path)
        assert rel is not None
        found = await self.api.kind(rel)
        return found == kind if kind == "directory" else found == "file"
