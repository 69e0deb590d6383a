"""hpstore: a whole hyperparameter search in one SQLite file.

KerasTuner's HyperParameters and Oracle API, stored row by row in SQLite so several
local processes can share a search, a killed search resumes exactly, and every trial,
metric and status change can be queried with SQL.
"""

from hpstore.errors import (
    DatabaseError,
    DuplicateValuesError,
    FailedTrialError,
    FatalError,
    FileIdentityError,
    ForeignSchemaError,
    HpStoreError,
    InvalidMetricError,
    LockTimeoutError,
    NotAnHpstoreFileError,
    NotJSONSerializableError,
    OracleContractError,
    ProjectChoiceError,
    ProjectMismatchError,
    ProjectRemovedError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
    SearchFullError,
    ServerUnavailableError,
    TrialNotEndedError,
    TrialNotFoundError,
    TrialNotRunningError,
    TunerIdInUseError,
    ValuesOutsideSpaceError,
)
from hpstore.hyperparameters import (
    Boolean,
    Choice,
    Fixed,
    Float,
    HyperParameter,
    HyperParameters,
    Int,
)
from hpstore.objective import DefaultObjective, MultiObjective, Objective, infer_metric_direction
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

__version__ = "0.1.0"

__all__ = [
    "BayesianOptimizationOracle",
    "Boolean",
    "Choice",
    "DatabaseError",
    "DecisionContext",
    "DefaultObjective",
    "DuplicateValuesError",
    "FailedTrialError",
    "FatalError",
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
    "MultiObjective",
    "NotAnHpstoreFileError",
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
