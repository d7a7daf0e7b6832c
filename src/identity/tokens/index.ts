export { ACCESS_TOKEN_TYP, type VerifiedAccessToken } from './access-tokens.ts';
export { randomToken, sha256Hex } from './opaque-tokens.ts';
export { purgeRefreshTokens, startRefreshTokenPurge } from './refresh-token-purge.ts';
export { revokeUserSessions } from './refresh-tokens.ts';
export { SESSION_CHANGES_CHANNEL, type SessionCache } from './session-cache.ts';
export { signSessionTokens } from './session-tokens.ts';
export {
  createTokenService,
  type Introspection,
  type TokenPair,
  type TokenService,
} from './token-service.ts';
