"""The store: the contract the Oracle and the tools use, and the engines behind it."""

from hpstore.store.sqlite import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    Database,
    ProjectStore,
    schema_dir,
)

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Database", "ProjectStore", "schema_dir"]
