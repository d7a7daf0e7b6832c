-- A system namespace's dead letters hold Mercato's own deliveries that failed every attempt (a
-- checkout's watchdog with its saga id: requeueing it resumes a stuck checkout that holds a
-- shopper's authorized payment). A tenant could set deadRetentionSeconds to 0 on them, and the
-- retention then deleted each such letter before an operator could requeue it. Updates now refuse
-- less than 7 days there (system-namespaces.ts, SYSTEM_MIN_DEAD_RETENTION_SECONDS); this raises
-- those set lower before to the floor.
update wal.namespaces set dead_retention_seconds = 604800
  where system and dead_retention_seconds < 604800;
