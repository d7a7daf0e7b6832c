-- The checkout's watchdogs (`mercato.checkout.watchdog`, order-events) and a refund's recheck
-- (`mercato.payment.refund-recheck`, payment-events) are Mercato's own timers on a tenant's system
-- namespace: they carry the header `mercato-internal`, so only the modules' subscribers take
-- them (`takesMessage`, src/wal/targets/cloud-event.ts), never the tenant's webhooks there.
-- A release before the header wrote them without it, and those it left in the WAL still reach a
-- tenant's webhook of the namespace when they are delivered: a watchdog due (a checkout's, a
-- cancel's, the next of a chain), retrying (a compensation that keeps failing), or a dead letter
-- requeued (by the operator or the tenant's admin, as src/checkout/README.md says to), with the
-- saga's and the order's ids, and its answer weighing on the watchdog's own delivery. Each is
-- marked as the current release writes it. Delivered ones are left as they are (nothing reads
-- their headers again); so is a message a stream backend (Redis Streams, NATS) already holds:
-- SQL cannot reach it, and it comes at most a few minutes after the release (the outbox rows
-- waiting for the relay, and the dead letters of every backend, are here and are marked).
--
-- Two statements, each matching a partial index of wal.messages (messages_key: not delivered nor
-- dead, with a key, as every domain event has; messages_dead), so neither reads the delivered log.
update wal.messages
  set headers = headers || '{"mercato-internal": "true"}'::jsonb
  where state not in ('delivered', 'dead') and ordering_key is not null
    and not headers ? 'mercato-internal'
    and ((namespace = 'order-events' and headers->>'ce-type' = 'mercato.checkout.watchdog')
      or (namespace = 'payment-events' and headers->>'ce-type' = 'mercato.payment.refund-recheck'));

update wal.messages
  set headers = headers || '{"mercato-internal": "true"}'::jsonb
  where state = 'dead'
    and not headers ? 'mercato-internal'
    and ((namespace = 'order-events' and headers->>'ce-type' = 'mercato.checkout.watchdog')
      or (namespace = 'payment-events' and headers->>'ce-type' = 'mercato.payment.refund-recheck'));
