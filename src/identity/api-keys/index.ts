export {
  API_KEY_CACHE_MS,
  API_KEY_CHANGES_CHANNEL,
  authenticateApiKey,
  forgetAllApiKeys,
  forgetApiKey,
} from './api-key-auth.ts';
export { apiKeyRoutes } from './api-key-routes.ts';
export type { ApiKey } from './api-key-store.ts';
