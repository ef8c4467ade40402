"""Local images for the stand-in, built without any registry.

The base is a root filesystem holding Debian's static busybox (package `busybox-static`) and
one symlink per applet, streamed to the engine with `docker import`.
"""

from __future__ import annotations

import io
import re
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


# --- agent (OpenClaw) images -------------------------------------------------------------------

AGENT_REPO = "nemoclaw-sim/openclaw"
DEFAULT_AGENT_VERSION = "2026.5.22"
CLUSTER_REPO = "ghcr.io/nvidia/openshell/cluster"

_TEXT_FILES = {
    "openclaw.json": '{\n  "agents": {"defaults": {"workspace": "/sandbox/.openclaw/workspace"}},\n'
                     '  "gateway": {"mode": "local", "port": 18789},\n  "meta": {"lastTouchedVersion": "%(v)s"}\n}\n',
    "workspace/AGENTS.md": "# AGENTS.md\n\nThis folder is home. Treat it that way.\n",
    "workspace/SOUL.md": "# SOUL.md\n\nBe genuinely helpful, not performatively helpful.\n",
    "workspace/USER.md": "# USER.md\n\n- Name: sim user\n- Timezone: UTC\n",
    "workspace/IDENTITY.md": "# IDENTITY.md\n\n- Name: Claw\n- Emoji: 🦞\n",
    "workspace/projects/demo/README.md": "# demo\n\nA nested project the agent works on.\n",
    "workspace/projects/demo/src/app/main.py": "def main() -> None:\n    print('hello from the sandbox')\n",
    "workspace/memory/2026-05-20.md": "# 2026-05-20\n\n- Backed up before the OpenShell upgrade.\n",
    "agents/main/agent/auth-profiles.json": '{"version": 1, "profiles": {}}\n',
    "agents/main/agent/models.json": '{"providers": {"nvidia": {"models": ["nemotron"]}}}\n',
    "skills/weather/SKILL.md": "---\nname: weather\ndescription: Current weather\n---\n\nUse wttr.in.\n",
    "credentials/oauth.json": '{"note": "simulated credential store"}\n',
    "hooks/on-start.sh": "#!/bin/sh\necho started\n",
    "identity/device.json": '{"deviceId": "sim-device-0001"}\n',
    "identity/device-auth.json": '{"token": "sim-token"}\n',
    "empty.txt": "",
    "workspace/one-byte.txt": "x",
}

# Binary files with deterministic pseudo-random content: bytes to ~1 MB (about 2.5 MB in all).
_BINARY_FILES = {
    "workspace/projects/demo/data/blob.bin": 1_000_000,
    "agents/main/sessions/0f6c1b2e-session.jsonl": 200_000,
    "memory/main.sqlite": 524_288,
    "workspace/projects/demo/data/small.bin": 17,
    "media/inbound/photo.jpg": 300_000,
    "agents/main/sessions/sessions.json": 4_096,
    "workspace/projects/demo/data/deep/er/still/leaf.bin": 65_536,
}


def _det_bytes(path: str, size: int) -> bytes:
    import hashlib

    out = bytearray()
    counter = 0
    seed = path.encode()
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def openclaw_tree(version: str) -> dict[str, tuple[bytes, int]]:
    """Relative path under /sandbox/.openclaw → (content, mode). Same bytes for every build."""
    files = {p: ((t % {"v": version}).encode() if "%(v)s" in t else t.encode(), 0o644) for p, t in _TEXT_FILES.items()}
    files["hooks/on-start.sh"] = (files["hooks/on-start.sh"][0], 0o755)
    files.update({p: (_det_bytes(p, n), 0o644) for p, n in _BINARY_FILES.items()})
    return files


def openclaw_script(version: str) -> bytes:
    return (
        "#!/bin/sh\n"
        "# Stand-in for the OpenClaw agent CLI (nemoclaw-sim)\n"
        'case "$1" in\n'
        f'  --version|-v|-V|version) echo "OpenClaw {version}" ;;\n'
        '  *) echo "openclaw: simulated agent; only --version is implemented" >&2; exit 1 ;;\n'
        "esac\n"
    ).encode()


def agent_rootfs_tar(version: str, root: str = "/sandbox") -> bytes:
    """The busybox root filesystem plus an OpenClaw-like home tree (under `root`) and `openclaw` binary."""
    home = root.strip("/") or "sandbox"
    base = busybox_rootfs_tar()
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(base)) as src, tarfile.open(fileobj=buf, mode="w") as tar:
        for member in src.getmembers():
            tar.addfile(member, src.extractfile(member) if member.isfile() else None)
        _add_file(tar, "usr/local/bin/openclaw", openclaw_script(version), 0o755)
        tree = openclaw_tree(version)
        dirs = sorted({str(Path(p).parent) for p in tree} | {"."})
        seen: set[str] = {"sandbox"}
        for i in range(1, len(Path(home).parts) + 1):  # the data root itself and its parents
            sub = "/".join(Path(home).parts[:i])
            if sub not in seen:
                seen.add(sub)
                _add_dir(tar, sub)
        for d in dirs:
            parts = Path(d).parts
            for i in range(len(parts) + 1):
                sub = "/".join((f"{home}/.openclaw",) + parts[:i]) if i else f"{home}/.openclaw"
                if sub not in seen:
                    seen.add(sub)
                    _add_dir(tar, sub, 0o700 if "credentials" in sub or "identity" in sub else 0o755)
        for rel, (data, mode) in sorted(tree.items()):
            _add_file(tar, f"{home}/.openclaw/{rel}", data, mode)
    return buf.getvalue()


def agent_repo(root: str = "/sandbox") -> str:
    """`nemoclaw-sim/openclaw`, or `nemoclaw-sim/openclaw-at-<root>` for an image whose WorkingDir
    (the data root, 0.0.99+) is `root`; the root is in the repository so a retag keeps it."""
    if root.rstrip("/") in ("", "/sandbox"):
        return AGENT_REPO
    if not re.fullmatch(r"(/[a-z0-9][a-z0-9._-]*)+", root.rstrip("/")):
        raise ValueError(f"not a usable data root: {root!r} (an absolute path of lowercase names)")
    return f"{AGENT_REPO}-at-{root.strip('/').replace('/', '-')}"


def agent_image_tag(version: str = DEFAULT_AGENT_VERSION, root: str = "/sandbox") -> str:
    return f"{agent_repo(root)}:{version}"


def ensure_agent_image(client: docker.DockerClient, version: str = DEFAULT_AGENT_VERSION, root: str = "/sandbox") -> str:
    """Build `nemoclaw-sim/openclaw[-at-<root>]:<version>` once per engine (any version on demand)."""
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._-]{0,127}", version):
        raise ValueError(f"not a usable agent version / image tag: {version!r}")
    root = root.rstrip("/") or "/sandbox"
    tag = agent_image_tag(version, root)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    client.api.import_image_from_data(
        agent_rootfs_tar(version, root), repository=agent_repo(root), tag=version,
        changes=[f"ENV HOME={root}", f"WORKDIR {root}", f"LABEL org.openclaw.version={version}",
                 'CMD ["/bin/sh"]'],
    )
    client.images.get(tag)
    return tag


def ensure_cluster_image(client: docker.DockerClient, version: str) -> str:
    """`ghcr.io/nvidia/openshell/cluster:<version>`: the busybox base under the legacy name."""
    tag = f"{CLUSTER_REPO}:{version}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    base = client.images.get(ensure_base_image(client))
    base.tag(CLUSTER_REPO, version)
    return tag
