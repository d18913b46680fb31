"""A self-signed certificate for the device's TLS ports (8009 CASTV2, 8443 eureka_info).

Senders do not verify it (pychromecast uses ``CERT_NONE``); Google's own senders verify the
device's Google-signed certificate and so will never accept a virtual device. Made with the
``openssl`` command, since Python's ``ssl`` module can load certificates but not make them.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trio

from ..lowlevel.proc import LineTail, open_child, pump_lines


async def make_server_context(directory: Path, common_name: str, openssl: str = "openssl") -> ssl.SSLContext:
    key, cert = directory / "key.pem", directory / "cert.pem"
    argv = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "3650", "-subj", f"/CN={common_name}",
    ]
    tail = LineTail(keep=10)
    async with open_child(argv, name="openssl") as child:
        assert child.stderr is not None
        with trio.fail_after(20):
            await pump_lines(child.stderr, tail, lambda line: None)
            rc = await child.wait()
    if rc != 0:
        raise RuntimeError(f"openssl could not make a certificate (status {rc}): {tail.text()}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
