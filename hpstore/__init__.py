"""hpstore: a whole hyperparameter search in one SQLite file.

KerasTuner's HyperParameters and Oracle API, stored row by row in SQLite so several
local processes can share a search, a killed search resumes exactly, and every trial,
metric and status change can be queried with SQL.
"""

import importlib
from typing import TYPE_CHECKING

from hpstore.errors import (
    DatabaseError,
    DuplicateValuesError,
    EngineUnavailableError,
    FailedTrialError,
    FatalError,
    FatalTypeError,
    FatalValueError,
    FileIdentityError,
    ForeignSchemaError,
    HpStoreError,
    InvalidMetricError,
    LockTimeoutError,
    MissingMetricError,
    MissingObjectiveError,
    NameTooLongError,
    NotAnHpstoreFileError,
    NotAnOracleError,
    NotJSONSerializableError,
    OracleContractError,
    ProjectChoiceError,
    ProjectMismatchError,
    ProjectRemovedError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
    SearchFullError,
    ServerUnavailableError,
    TrialLostError,
    TrialNotEndedError,
    TrialNotFoundError,
    TrialNotRunningError,
    TunerIdInUseError,
    ValuesOutsideSpaceError,
)

# Everything else is imported on first use (PEP 562): `import hpstore` is then a few
# milliseconds, so the `hpstore` command starts without loading numpy or the oracles, and
# a Ctrl-C at its start meets its own handler. Type checkers read the imports below.
if TYPE_CHECKING:
    from hpstore.hyperparameters import (
        Boolean,
        Choice,
        Fixed,
        Float,
        HyperParameter,
        HyperParameters,
        Int,
    )
    from hpstore.objective import (
        DefaultObjective,
        MultiObjective,
        Objective,
        infer_metric_direction,
    )
    from hpstore.oracle import DecisionContext, Oracle, synchronized
    from hpstore.oracles import (
        BayesianOptimizationOracle,
        GridSearchOracle,
        HyperbandOracle,
        RandomSearchOracle,
    )
    from hpstore.queries import trials_dataframe
    from hpstore.stopping import (
        MedianStopping,
        Patience,
        PercentileStopping,
        StoppingRule,
        SuccessiveHalving,
        Threshold,
    )
    from hpstore.store.sqlite.readonly import open_database
    from hpstore.trial import MetricHistory, MetricObservation, MetricsTracker, Trial, TrialStatus
    from hpstore.tuner import Tuner

#: where each name re-exported here lives (checked against the imports above by the tests)
_LAZY_MODULES: dict[str, tuple[str, ...]] = {
    "hpstore.hyperparameters": ("Boolean", "Choice", "Fixed", "Float", "HyperParameter",
                                "HyperParameters", "Int"),
    "hpstore.objective": ("DefaultObjective", "MultiObjective", "Objective",
                          "infer_metric_direction"),
    "hpstore.oracle": ("DecisionContext", "Oracle", "synchronized"),
    "hpstore.oracles": ("BayesianOptimizationOracle", "GridSearchOracle", "HyperbandOracle",
                        "RandomSearchOracle"),
    "hpstore.queries": ("trials_dataframe",),
    "hpstore.stopping": ("MedianStopping", "Patience", "PercentileStopping", "StoppingRule",
                         "SuccessiveHalving", "Threshold"),
    "hpstore.store.sqlite.readonly": ("open_database",),
    "hpstore.trial": ("MetricHistory", "MetricObservation", "MetricsTracker", "Trial",
                      "TrialStatus"),
    "hpstore.tuner": ("Tuner",),
}
_LAZY = {name: module for module, names in _LAZY_MODULES.items() for name in names}
#: the modules `import hpstore` made attributes of the package when it imported everything
#: (`hpstore.store.open_store` after a bare `import hpstore`): still reachable so
_SUBMODULES = frozenset({
    "hyperparameters", "objective", "oracle", "oracles", "progress", "queries", "rendering",
    "stopping", "store", "trial", "tuner", "workers"})

if not TYPE_CHECKING:  # (type checkers see the imports above, and a misspelled name)

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            if name in _SUBMODULES:
                return importlib.import_module(f"{__name__}.{name}")
            raise AttributeError(f"module 'hpstore' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # looked up once
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"

__all__ = [
    "BayesianOptimizationOracle",
    "Boolean",
    "Choice",
    "DatabaseError",
    "DecisionContext",
    "DefaultObjective",
    "DuplicateValuesError",
    "EngineUnavailableError",
    "FailedTrialError",
    "FatalError",
    "FatalTypeError",
    "FatalValueError",
    "FileIdentityError",
    "Fixed",
    "Float",
    "ForeignSchemaError",
    "GridSearchOracle",
    "HpStoreError",
    "HyperParameter",
    "HyperParameters",
    "HyperbandOracle",
    "Int",
    "InvalidMetricError",
    "LockTimeoutError",
    "MedianStopping",
    "MetricHistory",
    "MetricObservation",
    "MetricsTracker",
    "MissingMetricError",
    "MissingObjectiveError",
    "MultiObjective",
    "NameTooLongError",
    "NotAnHpstoreFileError",
    "NotAnOracleError",
    "NotJSONSerializableError",
    "Objective",
    "Oracle",
    "OracleContractError",
    "Patience",
    "PercentileStopping",
    "ProjectChoiceError",
    "ProjectMismatchError",
    "ProjectRemovedError",
    "RandomSearchOracle",
    "ReadOnlyDatabaseError",
    "SchemaVersionError",
    "SearchFullError",
    "ServerUnavailableError",
    "StoppingRule",
    "SuccessiveHalving",
    "Threshold",
    "Trial",
    "TrialLostError",
    "TrialNotEndedError",
    "TrialNotFoundError",
    "TrialNotRunningError",
    "TrialStatus",
    "Tuner",
    "TunerIdInUseError",
    "ValuesOutsideSpaceError",
    "__version__",
    "infer_metric_direction",
    "open_database",
    "synchronized",
    "trials_dataframe",
]
