export {
  CRASH_DEMO_PASSWORD,
  type CrashServers,
  crashServers,
  embeddedDataDir,
  postgresClone,
  type ServerStorage,
} from './crash-harness.ts';
export { testNatsUrl, testRedisUrl } from './services.ts';
export {
  type SecondProcess,
  startSecondProcess,
  startTestApp,
  type TestApp,
  type TestAppOptions,
} from './test-app.ts';
export {
  cloneTestDatabase,
  openShortTimeoutDatabase,
  type ShortTimeoutDatabase,
  type TestDatabaseKind,
  testDatabaseKind,
  testServerUrl,
} from './test-databases.ts';
export { until } from './until.ts';
