"""Local images for the stand-in, built without any registry.

The base is a root filesystem holding Debian's static busybox (package `busybox-static`) and
one symlink per applet, streamed to the engine with `docker import`.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import docker

BASE_IMAGE = "nemoclaw-sim/busybox:latest"


def find_busybox() -> Path:
    for candidate in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("busybox not found: install Debian's busybox-static")


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = int(time.time())
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def busybox_rootfs_tar() -> bytes:
    """A minimal root filesystem as an uncompressed tar archive (about 2 MB)."""
    busybox = find_busybox()
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "root", "sandbox", "usr", "usr/bin", "usr/local", "usr/local/bin", "proc", "sys", "dev"):
            _add_dir(tar, d, 0o1777 if d == "tmp" else 0o755)
        _add_file(tar, "bin/busybox", busybox.read_bytes(), 0o755)
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        _add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nsandbox:x:1000:1000:sandbox:/sandbox:/bin/sh\n")
        _add_file(tar, "etc/group", b"root:x:0:\nsandbox:x:1000:\n")
    return buf.getvalue()


def ensure_base_image(client: docker.DockerClient, tag: str = BASE_IMAGE) -> str:
    """Build the busybox base image once per engine; returns its tag."""
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    repo, _, version = tag.rpartition(":")
    client.api.import_image_from_data(busybox_rootfs_tar(), repository=repo, tag=version)
    client.images.get(tag)
    return tag
