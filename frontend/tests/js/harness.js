// A dozen lines of test runner for the pure modules, run in the real Chromium by test_js_units.py.

const tests = [];

/** Register test `name`; `fn` may be async and throws to fail. */
export function test(name, fn) { tests.push({ name, fn }); }

/** Throw unless `actual` and `expected` are equal as JSON (so arrays and objects compare by value). */
export function equal(actual, expected, what = '') {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what ? `${what}: ` : ''}expected ${e}, got ${a}`);
}

/** Run every registered test; one {name, error} each (error null when it passed). */
export async function run() {
  const results = [];
  for (const { name, fn } of tests.splice(0)) {
    try {
      await fn();
      results.push({ name, error: null });
    } catch (err) {
      results.push({ name, error: String(err?.stack || err) });
    }
  }
  return results;
}
