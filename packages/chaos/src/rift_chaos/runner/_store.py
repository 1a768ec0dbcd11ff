"""Where a run is kept: ``results/<workload>/<timestamp>/`` and the ``latest`` links.

The directory is created before anything runs, with the resolved workload in it
(seed included), so even a run that crashes leaves behind what it was. ``latest``
links (``results/latest`` and ``results/<workload>/latest``) are relative
symlinks, replaced atomically, so they survive moving the results folder.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from rift_chaos.workload import Workload


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStore:
    root: Path
    directory: Path

    @classmethod
    def create(cls, root: Path, workload: Workload, *, now: dt.datetime | None = None) -> RunStore:
        stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
        parent = root / workload.name
        parent.mkdir(parents=True, exist_ok=True)
        directory = parent / stamp
        suffix = 1
        while directory.exists():  # two runs in one second
            suffix += 1
            directory = parent / f"{stamp}-{suffix}"
        directory.mkdir()
        (directory / "nodes").mkdir()
        text = yaml.safe_dump(workload.to_dict(), sort_keys=False)
        (directory / "workload.yaml").write_text(text, encoding="utf-8")
        store = cls(root=root, directory=directory)
        store._link(root / "latest")
        store._link(parent / "latest")
        return store

    @property
    def history(self) -> Path:
        return self.directory / "history.jsonl"

    @property
    def timeline(self) -> Path:
        return self.directory / "nemesis.jsonl"

    @property
    def results(self) -> Path:
        return self.directory / "results.json"

    @property
    def report(self) -> Path:
        return self.directory / "report.html"

    def node_dir(self, node: str) -> Path:
        path = self.directory / "nodes" / node
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _link(self, link: Path) -> None:
        target = os.path.relpath(self.directory, link.parent)
        tmp = link.with_name(f".{link.name}.tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(target)
        tmp.replace(link)
