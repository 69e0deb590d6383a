"""The PostgreSQL engine: one search, or many, in a database that many machines share.

Imported only for a ``postgresql://`` (or ``postgres://``) URL; psycopg 3 is needed then
(``pip install "hpstore[postgres]"``). Modules: ``driver`` (psycopg, URLs, errors in
words), ``database`` (the connection, transactions that retry and reconnect, advisory
locks), ``schema`` (migrations under a lock), ``liveness`` (each worker's lock), ``project``,
``reading``, ``document``, ``steering`` and ``history`` (all the SQL of a project), ``store``
(the contract's Store), ``names`` (how long an indexed name may be),
``usersql`` (``hpstore sql`` and ``hpstore check``), ``admin`` (schemas for tests and
``hpstore stress``) and ``throwaway`` (a private server for tests and benchmarks).
"""

from hpstore.store.postgresql.driver import is_url, redact

__all__ = ["is_url", "redact"]
