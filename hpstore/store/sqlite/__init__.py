"""The SQLite engine: one search file (or an in-memory search) behind the store contract."""

from hpstore.store.sqlite.database import Database
from hpstore.store.sqlite.project import SQLiteProject
from hpstore.store.sqlite.schema import APPLICATION_ID, SCHEMA_VERSION, schema_dir
from hpstore.store.sqlite.store import SQLiteStore

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Database", "SQLiteProject", "SQLiteStore",
           "schema_dir"]
