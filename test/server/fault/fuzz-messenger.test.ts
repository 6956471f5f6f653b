/**
 * Fuzzing the messenger endpoints: ping, conversations, messages, read marks, events, logout, stream, health and unknown routes. Seeded generated malformed requests through the app's
 * own fetch handler (see test/support/fuzz-requests.ts). Required: no 5xx, no error logged, and no
 * row changed by any request the server refused, checked on every request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../support/server-app.ts';
import { runFuzz, seedFuzzTarget } from '../../support/fuzz-requests.ts';

const SEED = 0x5eed_0006;
/** With the other half of the API (fuzz-admin.test.ts), 10,000 refused requests in all. */
const REJECTED_WANTED = 5_000;

let t: TestServer;
const errors: Record<string, unknown>[] = [];
beforeAll(async () => {
  // No background writer (merge worker, coalesced last-seen flush): every row change is caused by
  // the request under test.
  t = await startTestServer({ runWorker: false, lastSeenFlushMs: 3_600_000, log: (line) => void (line['level'] === 'error' && errors.push(line)) });
  await seedFuzzTarget(t);
});
afterAll(async () => t.close());

describe('fuzzing the messenger endpoints', () => {
  it(`${REJECTED_WANTED} seeded malformed requests: no 5xx, no error, nothing written by a refused request`, async () => {
    const r = await runFuzz(t, { seed: SEED, part: 'messenger', rejectedWanted: REJECTED_WANTED });
    expect(r.failures).toEqual([]);
    expect(errors).toEqual([]);
    // The generator really produces malformed requests: nearly all are refused, by every kind of rule.
    expect(r.rejected).toBe(REJECTED_WANTED);
    expect(r.rejected / r.sent).toBeGreaterThan(0.85);
    for (const s of [400, 403, 404, 413]) expect(r.statuses[s] ?? 0, `status ${s} seen`).toBeGreaterThan(0);
    console.info(`fuzz messenger: ${r.sent} requests (${r.rejected} refused), statuses ${JSON.stringify(r.statuses)}, ${r.rechecked} refused requests re-checked by full fingerprint`);
  }, 120_000);
});
