-- Inventory returns (issue 11): a committed reservation whose order is cancelled puts its units
-- back on hand and ends as `returned` (ledger kind `return`, allowed since 0018).
alter table inventory.reservations drop constraint reservations_status_check;
alter table inventory.reservations add constraint reservations_status_check
  check (status in ('active', 'committed', 'released', 'expired', 'returned'));
