export { authRoutes } from './auth-routes.ts';
export { createLoginThrottle, LOGIN_THROTTLE_KEY_INFO, type LoginThrottle } from './login-throttle.ts';
