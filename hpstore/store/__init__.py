"""The search file: opening and checking it, transactions, locks, and the SQL of a project."""

from hpstore.store.database import APPLICATION_ID, SCHEMA_VERSION, Database, schema_dir
from hpstore.store.project import ProjectStore

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Database", "ProjectStore", "schema_dir"]
