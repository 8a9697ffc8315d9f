"""The `search:` section (contract §7): what `specc tune` searches over, read by nothing else.

Only the surface language lives here; whether each key of `space` is a real path of the spec,
and whether every corner of the space is a valid spec, is checked in specc.analysis.search.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Discriminator, Field, Tag, field_validator

from specc.diagnostics import quoted
from specc.schema.common import Float, Int, PositiveFloat, PositiveInt, Seed, Strict

FloatRange = Annotated[list[Float], Field(min_length=2, max_length=2)]
"""[low, high] of a float distribution, both ends included."""
IntRange = Annotated[list[Int], Field(min_length=2, max_length=2)]
"""[low, high] of an integer distribution, both ends included."""


class Uniform(Strict):
    """A float drawn uniformly from [low, high]: `{uniform: [0.0, 0.5]}`."""

    uniform: FloatRange
    """[low, high], both included."""
    step: PositiveFloat | None = None
    """Draw only low, low + step, low + 2·step, ... up to high (a grid's spacing)."""


class LogUniform(Strict):
    """A float drawn uniformly on a log scale from [low, high], low > 0:
    `{log_uniform: [1.0e-4, 1.0e-1]}` (learning rates, penalty strengths)."""

    log_uniform: FloatRange
    """[low, high], both included, low > 0."""


class IntUniform(Strict):
    """An integer drawn uniformly from [low, high]: `{int_uniform: [16, 128]}`."""

    int_uniform: IntRange
    """[low, high], both included."""
    step: PositiveInt | None = None
    """Draw only low, low + step, ... up to high; default 1."""


class LogIntUniform(Strict):
    """An integer drawn uniformly on a log scale from [low, high], low >= 1:
    `{log_int_uniform: [8, 512]}` (layer widths)."""

    log_int_uniform: IntRange
    """[low, high], both included, low >= 1."""


class Choice(Strict):
    """One of the listed values: scalars, or whole mappings and lists (an activation, a list
    of layers): `{choice: [32, 64, 128]}`."""

    choice: Annotated[list[Any], Field(min_length=1)]
    """The values, each one a value the searched key accepts."""


DISTRIBUTION_NAMES = ("uniform", "log_uniform", "int_uniform", "log_int_uniform", "choice")


def distribution_kind(value: Any) -> str | None:
    """The distribution a space value names: its key among DISTRIBUTION_NAMES (a `step` may
    stand beside it, in either order), else its first key."""
    if isinstance(value, dict) and value:
        named = [k for k in value if k in DISTRIBUTION_NAMES]
        return str(named[0] if named else next(iter(value)))
    if isinstance(value, Strict):
        return next(iter(type(value).model_fields))
    return None


Distribution = Annotated[
    Annotated[Uniform, Tag("uniform")]
    | Annotated[LogUniform, Tag("log_uniform")]
    | Annotated[IntUniform, Tag("int_uniform")]
    | Annotated[LogIntUniform, Tag("log_int_uniform")]
    | Annotated[Choice, Tag("choice")],
    Discriminator(distribution_kind),
]
"""Where a searched value comes from: uniform, log_uniform, int_uniform, log_int_uniform or
choice."""

STORAGE_SCHEMES = ("postgresql", "mysql", "sqlite")
"""Database URL schemes of `storage` (SQLAlchemy's, as Optuna's RDB storage takes them; a
driver may follow the scheme: `postgresql+psycopg2://...`)."""


class Search(Strict):
    """A hyperparameter search, run by `specc tune`; `specc train` trains the base values."""

    metric: str = "val_loss"
    """The validation metric that ranks trials: val_loss or a val_ metric of the task
    (val_accuracy, val_mae, ...); never a test one."""
    trials: PositiveInt = 20
    """Number of trials (a grid with fewer points runs each point once)."""
    sampler: Literal["random", "tpe", "grid", "qmc"] = "random"
    """random: independent draws; tpe: Tree-structured Parzen Estimator; grid: every
    combination of the choices and stepped ranges; qmc: a quasi-random (Sobol) sequence."""
    pruner: Literal["none", "median", "hyperband"] = "none"
    """Stop unpromising trials early, fed the per-epoch monitored validation value: median
    (below the median of earlier trials at the same epoch) or hyperband."""
    seed: Seed = 0
    """Seed of the sampler: the same seed and one worker give the same trials."""
    storage: str | None = None
    """null: an Optuna journal file in the tune run directory (resumable, several local
    workers); or a database URL shared by workers on many machines:
    `postgresql://user:password@host:5432/db`, `mysql://...`, `sqlite:///path/to/file.db`."""
    space: Annotated[dict[str, Distribution], Field(min_length=1)]
    """Searched values: each key is a `--set` path into this spec (`optimizer.lr`,
    `layers.0.dense.units`), each value its distribution: `{uniform: [lo, hi]}`,
    `{log_uniform: [lo, hi]}`, `{int_uniform: [lo, hi]}`, `{log_int_uniform: [lo, hi]}` or
    `{choice: [...]}`. `specc check` checks every corner of the space."""

    @field_validator("storage")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in STORAGE_SCHEMES or "://" not in url:
            raise ValueError(
                "expected a database URL (postgresql://..., mysql://..., sqlite:///...)"
                f" or null, got {quoted(url)}"
            )
        if scheme == "sqlite" and not url.split("://", 1)[1].startswith("/"):
            raise ValueError(
                f"a sqlite storage URL names a file: sqlite:///path.db, got {quoted(url)}"
            )
        if scheme == "sqlite" and url.split("://", 1)[1] in ("/", "/:memory:"):
            raise ValueError("an in-memory sqlite storage keeps nothing: name a file")
        if scheme != "sqlite" and not parts.netloc and not parts.path.strip("/"):
            raise ValueError(
                f"the {scheme} storage URL names no server nor database: {quoted(url)}"
            )
        return url
