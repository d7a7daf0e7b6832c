export { testNatsUrl, testRedisUrl } from './services.ts';
export { startTestApp, type TestApp } from './test-app.ts';
export {
  cloneTestDatabase,
  type TestDatabaseKind,
  testDatabaseKind,
  testServerUrl,
} from './test-databases.ts';
