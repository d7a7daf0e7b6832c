export { authRoutes } from './auth-routes.ts';
export { createLoginThrottle, type LoginThrottle } from './login-throttle.ts';
