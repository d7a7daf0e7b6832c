-- Reservation transfers (flash sales): units held by one reservation move to another (a campaign's
-- pool into an order's reservation, or a failed order's units back into the pool). The items'
-- counters do not change (the units stay reserved, only their holder changes), so a `transfer`
-- entry has on_hand_delta and reserved_delta 0: it records the move, one entry per item line moved,
-- with the receiving reservation's key, and the ledger still rebuilds every item exactly.
alter table inventory.ledger drop constraint ledger_kind_check;
alter table inventory.ledger add constraint ledger_kind_check
  check (kind in ('receive', 'adjust', 'reserve', 'release', 'commit', 'expire', 'return', 'transfer'));
