-- The WAL namespaces an API key may write to and read from; empty means none. Checked by the
-- WAL module; identity only stores them.
alter table identity.api_keys add column namespaces text[] not null default '{}';
