export { checkReadiness, type HealthCheck, type ReadinessReport } from './health.ts';
export { createLogger, type Logger } from './logger.ts';
export { createMetrics, type Metrics } from './metrics.ts';
export { hasBearerToken, metricsRoute } from './metrics-route.ts';
