-- Where the classifier's one-second window starts for each log: ingestion re-reads the log
-- from here (up to the checkpoint, without re-applying it) to rebuild its state.
ALTER TABLE clickd_internal.checkpoints ADD COLUMN window_start bigint;
