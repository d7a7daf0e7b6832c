-- A saga whose order's units were already set aside in a pool (a flash sale's campaign
-- reservation, issue 12) takes them from that reservation instead of from available stock, and
-- gives them back to it when it compensates while the pool is still open.
alter table checkout.sagas add column stock_pool text check (length(stock_pool) between 1 and 200);
