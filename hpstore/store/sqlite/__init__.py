"""The SQLite engine: one search file (or an in-memory search) behind the store contract."""

from hpstore.store.sqlite.database import Database
from hpstore.store.sqlite.project import ProjectStore
from hpstore.store.sqlite.schema import APPLICATION_ID, SCHEMA_VERSION, schema_dir

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Database", "ProjectStore", "schema_dir"]
