"""A student without a browser: what an app page asks of Voilà, over the same HTTP and websocket.

The light page (appliance/voila-page) fetches the app's pre-rendered HTML, which names its
pre-heated kernel; connects to the kernel's channels; asks ipywidgets' control comm for every
widget's state; and, when a slider moves, sends the slider's new value and waits for the picture's
new value. This does exactly that, so a class of thirty can be measured on this machine without
thirty browsers taking most of its processor: the appliance's own answer times, next to the
browsers' numbers in bench/classroom.py.
"""

from __future__ import annotations

import json
import re
import struct
import time
import uuid

import httpx
import websocket

KERNEL_ID = re.compile(r'"kernelId":\s*"([0-9a-f-]{36})"')


def _unpack(frame) -> dict:
    """A message from Jupyter's websocket: JSON text, or the binary form that carries buffers
    (count, offsets, the JSON, the buffers)."""
    if isinstance(frame, str):
        return json.loads(frame)
    (count,) = struct.unpack_from("!I", frame, 0)
    offsets = struct.unpack_from(f"!{count}I", frame, 4)
    end = offsets[1] if count > 1 else len(frame)
    msg = json.loads(frame[offsets[0] : end].decode())
    msg["buffers"] = [frame[offsets[i] : offsets[i + 1] if i + 1 < count else len(frame)] for i in range(1, count)]
    return msg


class WireStudent:
    def __init__(self, app_url: str, timeout: float = 120.0):
        self.app_url, self.timeout = app_url, timeout
        self.session = uuid.uuid4().hex
        self.http = httpx.Client(timeout=timeout)
        self.ws = None
        self.kernel_id = ""
        self.states: dict[str, dict] = {}

    def _send(self, msg_type: str, content: dict, metadata: dict | None = None) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "username": "student",
            "session": self.session,
            "msg_type": msg_type,
            "version": "5.3",
            "date": "",
        }
        self.ws.send(
            json.dumps(
                {
                    "header": header,
                    "parent_header": {},
                    "metadata": metadata or {},
                    "content": content,
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        return msg_id

    def _until(self, done) -> dict:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(deadline - time.monotonic(), 0.1))
            msg = _unpack(self.ws.recv())
            if done(msg):
                return msg
        raise TimeoutError("no answer from the app's kernel")

    def open(self) -> float:
        """Seconds from asking for the page to holding every widget's state (the page could draw)."""
        t0 = time.perf_counter()
        page = self.http.get(self.app_url)
        page.raise_for_status()
        found = KERNEL_ID.search(page.text)
        if not found:
            raise RuntimeError("the page names no kernel")
        self.kernel_id = found.group(1)
        base = self.app_url.split("/voila/render/")[0]
        ws_url = base.replace("http", "ws", 1) + f"/api/kernels/{self.kernel_id}/channels?session_id={self.session}"
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        self.ws = websocket.create_connection(ws_url, timeout=self.timeout, cookie=cookie)
        control = uuid.uuid4().hex
        self._send(
            "comm_open",
            {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
            {"version": "1.0.0"},  # ipywidgets' control protocol
        )
        self._send("comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
        reply = self._until(
            lambda m: m.get("msg_type") == "comm_msg" and m["content"].get("data", {}).get("method") == "update_states"
        )
        self.states = reply["content"]["data"]["states"]
        if not any(s["state"].get("_model_name") == "ImageModel" for s in self.states.values()):
            raise RuntimeError("the app drew no picture")
        return time.perf_counter() - t0

    def model(self, model_name: str, label: str = "") -> str:
        for model_id, s in self.states.items():
            state = s["state"]
            if state.get("_model_name") == model_name and label in state.get("description", ""):
                return model_id
        raise KeyError(f"no {model_name} {label!r} in the app")

    def change(self, slider: str, value: float, picture: str) -> float:
        """Seconds from sending a slider's new value to the picture's new PNG arriving."""
        t0 = time.perf_counter()
        self._send(
            "comm_msg", {"comm_id": slider, "data": {"method": "update", "state": {"value": value}, "buffer_paths": []}}
        )
        self._until(
            lambda m: (
                m.get("msg_type") == "comm_msg"
                and m["content"].get("comm_id") == picture
                and m["content"].get("data", {}).get("method") == "update"
                and ["value"] in m["content"]["data"].get("buffer_paths", [])
            )
        )
        return time.perf_counter() - t0

    def close(self) -> None:
        """Leave as the page does: ask Voilà to shut the page's kernel down."""
        if self.ws is not None:
            self.ws.close()
        if self.kernel_id:
            base = self.app_url.split("/voila/render/")[0]
            xsrf = self.http.cookies.get("_xsrf", "")
            self.http.post(f"{base}/voila/api/shutdown/{self.kernel_id}", data={"_xsrf": xsrf})
        self.http.close()
