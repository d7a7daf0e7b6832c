/**
 * Which optional servers the test run may use. scripts/test.ts probes them and sets these
 * variables; a suite that needs one runs with describe.skipIf(!testRedisUrl()).
 */
export function testRedisUrl(): string | undefined {
  return process.env['MERCATO_TEST_REDIS_URL'] || undefined;
}

export function testNatsUrl(): string | undefined {
  return process.env['MERCATO_TEST_NATS_URL'] || undefined;
}
