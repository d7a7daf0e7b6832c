-- On PostgreSQL every database gets a LOGIN role of its own that is nothing but a member of
-- mercato_app; request transactions connect as it, so even SQL that resets its role inside a
-- request cannot get past row-level security. Its password lives here, readable by the owner only.
create table platform.request_credentials (
  role_name text primary key,
  password text not null,
  created_at timestamptz not null default now()
);
revoke all on platform.request_credentials from public;
