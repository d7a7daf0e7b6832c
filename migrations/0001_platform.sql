-- The role every request transaction switches to (SET LOCAL ROLE via set_config). It logs in
-- nowhere, owns no table and has no BYPASSRLS, so row-level security always applies to it.
do $$
begin
  create role mercato_app nologin nobypassrls;
exception when duplicate_object or unique_violation then null;
end $$;
grant mercato_app to current_user;

-- Keys that sign access tokens. Kept in the database so every process signs and verifies
-- with the same keys; only the owner role can read them.
create table platform.signing_keys (
  kid text primary key,
  algorithm text not null check (algorithm = 'EdDSA'),
  private_pem text not null,
  public_jwk jsonb not null,
  created_at timestamptz not null default now(),
  retired_at timestamptz
);
