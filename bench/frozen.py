"""An earlier commit's version of one module, imported beside today's code: the peer a benchmark measures
against, without keeping a copy of the old code in the tree (``git show REV:PATH``, then executed as a module
of its own name; it imports today's versions of everything else)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def module_at(rev: str, path: str, name: str) -> ModuleType:
    """The module at ``path`` as it was at commit ``rev``, registered as ``name`` (dataclasses and pickling
    look their module up in ``sys.modules``)."""
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True)
    if shown.returncode != 0:
        raise SystemExit(f"读不到 {rev}:{path}（需要完整的 git 历史）：{shown.stderr.strip()}")
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    module.__file__ = f"{rev}:{path}"
    sys.modules[name] = module
    exec(compile(shown.stdout, module.__file__, "exec"), module.__dict__)
    return module
