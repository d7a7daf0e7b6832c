-- Every revoked session (logout, reuse detection, a disabled or erased user, a password change)
-- is announced on commit with its user's id, so each process drops what it cached about that
-- user's sessions (access tokens are checked against a per-process cache; see
-- src/identity/tokens/session-cache.ts). Changes to the user itself already arrive on
-- mercato_identity_users (0006).
create function identity.notify_session_revoked() returns trigger language plpgsql as $$
begin
  perform pg_notify('mercato_identity_sessions', new.user_id::text);
  return null;
end
$$;

create trigger refresh_tokens_revoked after update of revoked_at on identity.refresh_tokens
  for each row when (old.revoked_at is null and new.revoked_at is not null)
  execute function identity.notify_session_revoked();

-- Revoked API keys likewise, with the key's id: each process drops the key from its lookup
-- cache (src/identity/api-keys/api-key-auth.ts) instead of accepting it until the cache expires.
create function identity.notify_api_key_revoked() returns trigger language plpgsql as $$
begin
  perform pg_notify('mercato_identity_api_keys', new.id::text);
  return null;
end
$$;

create trigger api_keys_revoked after update of revoked_at on identity.api_keys
  for each row when (old.revoked_at is null and new.revoked_at is not null)
  execute function identity.notify_api_key_revoked();
