"""The legacy k3s "cluster" gateway container (≤0.0.36), as `docker inspect` sees it
(docs/reference/openshell-cli-and-gateway.md, "Legacy cluster container").

Only the container's outside is reproduced: name, image tag, running state and the 30051/tcp
port binding NemoClaw's cluster-drift check reads. Nothing inside listens. The port is published
on 127.0.0.2 so it never collides with a stand-in gateway on 127.0.0.1 using the same number.
The engine has no default bridge, so the container joins a user-defined bridge network named
like the real one (`openshell-cluster-<gateway>`), which is what makes port publishing work.
"""

from __future__ import annotations

import docker
import docker.errors

from .images import ensure_cluster_image

CLUSTER_HOST_IP = "127.0.0.2"
LABEL_DEPLOYMENT = "nemoclaw-sim/deployment"


def cluster_name(gateway: str = "nemoclaw") -> str:
    return f"openshell-cluster-{gateway}"


def up(client: docker.DockerClient, version: str, port: int, gateway: str = "nemoclaw",
       deployment: str | None = None) -> str:
    """Start (replacing any previous one) the cluster container; returns its name."""
    name = cluster_name(gateway)
    down(client, gateway)
    image = ensure_cluster_image(client, version)
    try:
        client.networks.get(name)
    except docker.errors.NotFound:
        client.networks.create(name, driver="bridge", labels={LABEL_DEPLOYMENT: deployment or ""})
    labels = {"nemoclaw-sim/role": "cluster"}
    if deployment:
        labels[LABEL_DEPLOYMENT] = deployment
    client.containers.run(
        image, ["/bin/sh", "-c", "trap 'exit 0' TERM INT; sleep 2147483647 & wait"], name=name, detach=True,
        labels=labels, network=name, ports={"30051/tcp": (CLUSTER_HOST_IP, port)},
        volumes={name: {"bind": "/var/lib/rancher/k3s", "mode": "rw"}},
        restart_policy={"Name": "unless-stopped"}, environment={"OPENSHELL_IMAGE_TAG": version},
    )
    return name


def owner(client: docker.DockerClient, gateway: str = "nemoclaw") -> str | None:
    """The deployment label of the running cluster container, '' if unlabelled, None if absent."""
    try:
        c = client.containers.get(cluster_name(gateway))
    except docker.errors.NotFound:
        return None
    return c.labels.get(LABEL_DEPLOYMENT, "")


def down(client: docker.DockerClient, gateway: str = "nemoclaw") -> bool:
    """Remove the container, its volume and network; True if a container was removed."""
    name = cluster_name(gateway)
    removed = False
    try:
        client.containers.get(name).remove(force=True)
        removed = True
    except docker.errors.NotFound:
        pass
    for remove in (lambda: client.volumes.get(name).remove(force=True), lambda: client.networks.get(name).remove()):
        try:
            remove()
        except docker.errors.NotFound:
            pass
    return removed
