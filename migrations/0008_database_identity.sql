-- The database's own id (issue 27): the name of the follower file the ingest daemon writes
-- into each log directory it follows (`<log>/followers/<id>`: the lowest LSN this database
-- may still read again), from which the edge's retention learns what is projected without
-- a database connection of its own (docs/design/archive.md, "Retention").
--
-- One row, made once; a rebuild carries it over into the rebuilt schema (Rebuilder's
-- copied tables), so a database keeps its id, and its hold on the logs, for its lifetime.

CREATE TABLE clickd_internal.database_identity (
    id      uuid        PRIMARY KEY,
    created timestamptz NOT NULL DEFAULT now()
);

INSERT INTO clickd_internal.database_identity (id) VALUES (gen_random_uuid());
