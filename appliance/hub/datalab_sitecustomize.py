# Installed as sitecustomize.py in the "Data Lab client" kernel's environment (install.sh --hub).
# The astro-datalab client finds its own address at import by "connecting" a UDP socket to
# 8.8.8.8, which fails on a box with no default route (Starbox needs no internet). Only that one
# call falls back to loopback; every other connection is untouched.
import socket

_connect = socket.socket.connect


def _connect_or_loopback(self, address):
    try:
        return _connect(self, address)
    except OSError:
        if address == ("8.8.8.8", 1):
            return _connect(self, ("127.0.0.1", 1))
        raise


socket.socket.connect = _connect_or_loopback
