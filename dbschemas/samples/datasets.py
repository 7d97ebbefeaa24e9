"""Where the sample datasets live: `--datasets`, else `$CDCHUB_DATASETS`, else the copies shipped in
`dbschemas/datasets/` (each with its licence), else a `shared/datasets` next to the repository."""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
ENV_VAR = "CDCHUB_DATASETS"


def datasets_dir(option: str | Path | None = None) -> Path:
    """The datasets directory, resolved from the option, the environment, or next to the repository.

    The default walks up from the repository so a git worktree (`/work/wt-x`) and the main checkout
    (`/work/main`) both find the shared `../shared/datasets`.

    Raises:
        ConfigError: no candidate directory exists.
    """
    candidates: list[Path] = []
    if option:
        candidates.append(Path(option))
    elif os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    else:
        candidates.append(REPO / "dbschemas" / "datasets")
        candidates.extend(parent / "shared" / "datasets" for parent in REPO.parents)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    raise ConfigError(
        f"sample datasets not found; pass --datasets DIR or set {ENV_VAR}",
        tried=", ".join(str(c) for c in candidates[:3]),
    )


def dataset_file(root: Path, sample_dir: str, name: str) -> Path:
    """One file of a dataset, with a clear error when it is missing."""
    path = root / sample_dir / name
    if not path.is_file():
        raise ConfigError("dataset file missing", path=str(path))
    return path
