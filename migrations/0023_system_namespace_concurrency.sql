-- System namespaces deliver up to 64 messages at once (SYSTEM_CONSUMER_CONCURRENCY in
-- src/wal/namespaces/system-namespaces.ts): module subscribers run the deliveries that arrive
-- together in one transaction, so a bulk import's events drain in batches of 64, not 8. Those
-- still at the old default are raised; a tenant lowers it again with PUT /wal/namespaces/{name}.
update wal.namespaces set consumer_concurrency = 64, updated_at = now()
where system and consumer_concurrency = 8;
