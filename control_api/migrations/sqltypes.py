"""Column types that differ between the two backends, for the migrations' SQL."""

PK = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgresql": "BIGSERIAL PRIMARY KEY"}
BIGINT = {"sqlite": "INTEGER", "postgresql": "BIGINT"}
FALSE = {"sqlite": "0", "postgresql": "FALSE"}
