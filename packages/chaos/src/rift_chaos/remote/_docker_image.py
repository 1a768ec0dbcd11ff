"""Build the node image ``rift-node`` locally: no registry is needed or used.

Recipe (also in ``packages/chaos/images/build-node-image.sh`` for humans):

1. ``debootstrap --variant=minbase --include=<PACKAGES> bookworm ROOTFS MIRROR``:
   a minimal Debian 12 whose ``python3`` is 3.11, plus what a node needs (iproute2
   and iptables for partitions, procps, faketime for clock faults).
2. Strip apt lists, docs and man pages, then ``tar -C ROOTFS -c .`` into a cached
   tarball ``<cache>/rift-node-<digest>.tar`` (cache: ``$RIFT_CACHE_DIR``, else
   ``/var/cache/rift`` as root, else ``~/.cache/rift``).
3. ``docker import`` the tarball as ``rift-node:<digest>``.

``<digest>`` is a hash of the recipe (suite, package list, mirror), so changing the
recipe builds a new image and an unchanged one is never rebuilt. Every step is
skipped when its output exists; a file lock serialises concurrent builders. Cold,
the build takes a few minutes (debootstrap downloads ~60 MB); warm, a lookup.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rift_chaos.errors import BackendUnavailable

if TYPE_CHECKING:
    import docker

__all__ = ["IMAGE_REPOSITORY", "PACKAGES", "cache_dir", "ensure_image", "image_tag"]

IMAGE_REPOSITORY = "rift-node"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "python3",
    "iproute2",
    "iptables",
    "procps",
    "faketime",
    "ca-certificates",
)
_STRIP = ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man")
_DEBOOTSTRAP_TIMEOUT = 1800.0


def cache_dir() -> Path:
    configured = os.environ.get("RIFT_CACHE_DIR")
    if configured:
        return Path(configured)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/cache/rift")
    return Path.home() / ".cache" / "rift"


def _mirror() -> str:
    return os.environ.get("RIFT_DEBIAN_MIRROR", DEFAULT_MIRROR)


def image_tag(*, mirror: str | None = None) -> str:
    """``rift-node:<digest>``, the digest naming this exact recipe."""
    recipe = "\n".join((SUITE, mirror or _mirror(), *PACKAGES, *_STRIP))
    return f"{IMAGE_REPOSITORY}:{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_rootfs_tarball(tarball: Path, mirror: str) -> None:
    if shutil.which("debootstrap") is None:
        raise BackendUnavailable(
            "building the rift-node image needs debootstrap (apt-get install debootstrap)"
        )
    with tempfile.TemporaryDirectory(prefix="rift-rootfs-", dir=tarball.parent) as tmp:
        rootfs = Path(tmp) / "rootfs"
        argv = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(rootfs),
            mirror,
        ]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=_DEBOOTSTRAP_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendUnavailable(f"debootstrap failed: {exc}") from exc
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
            raise BackendUnavailable(
                f"debootstrap exited {done.returncode}: {' '.join(last) or 'no output'}"
            )
        for sub in _STRIP:
            shutil.rmtree(rootfs / sub, ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".tar.part")
        with partial.open("wb") as out:
            tar = subprocess.run(
                ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                stdout=out,
                stderr=subprocess.PIPE,
                timeout=600,
                check=False,
            )
        if tar.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BackendUnavailable(f"tar of the rootfs failed: {tar.stderr.decode().strip()}")
        partial.replace(tarball)


def ensure_image(
    client: docker.DockerClient, *, cache: Path | None = None, mirror: str | None = None
) -> str:
    """The tag of the node image, building and importing it first if it is missing."""
    import docker.errors

    mirror = mirror or _mirror()
    tag = image_tag(mirror=mirror)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    directory = cache or cache_dir()
    repository, version = tag.split(":")
    tarball = directory / f"{repository}-{version}.tar"
    with _locked(directory / f"{repository}.lock"):
        try:
            client.images.get(tag)  # another builder finished while we waited
            return tag
        except docker.errors.ImageNotFound:
            pass
        if not tarball.exists():
            _build_rootfs_tarball(tarball, mirror)
        try:
            client.api.import_image_from_file(
                str(tarball),
                repository=repository,
                tag=version,
                changes=[
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "ENV LANG=C.UTF-8",
                    'CMD ["sleep", "infinity"]',
                ],
            )
            client.images.get(tag)
        except docker.errors.DockerException as exc:
            raise BackendUnavailable(f"cannot import {tarball} as {tag}: {exc}") from exc
    return tag
