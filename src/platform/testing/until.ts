/** Polls until check() is true (no timing is asserted: the limit only ends a hung test). */
export async function until(check: () => Promise<boolean> | boolean, what: string, limitMs = 30_000) {
  const stop = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > stop) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
