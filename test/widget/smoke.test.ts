import { waitFor } from '@testing-library/preact';
import { describe, expect, it } from 'vitest';
import { cookieValue, harness, settings } from './setup.ts';

describe('smoke', () => {
  it('boots, pings and mounts', async () => {
    const h = harness();
    const r = await h.w.boot(settings());
    expect(r).toEqual({ ok: true });
    expect(h.fake.callsTo('POST', '/ping')).toHaveLength(1);
    expect(cookieValue('parley_vid_app_test')).toBe(h.w.getVisitorId());
    await waitFor(() => expect(h.ui().getByRole('button', { name: 'Open chat' })).toBeTruthy());
  });
});
