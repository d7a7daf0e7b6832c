-- API keys may expire (POST /api/v1/api-keys takes expiresAt): a key past it is refused as a
-- revoked one is. Null (every key made before, and those made without one) never expires.
alter table identity.api_keys add column expires_at timestamptz;
