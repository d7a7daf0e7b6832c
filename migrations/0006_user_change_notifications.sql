-- Every change to a user is announced on commit, so each process can drop what it cached
-- about that user (profile reads are cached per process; see src/identity/users/profile-cache.ts).
create function identity.notify_user_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('mercato_identity_users', coalesce(new.id, old.id)::text);
  return null;
end
$$;

create trigger users_changed after update or delete on identity.users
  for each row execute function identity.notify_user_changed();
