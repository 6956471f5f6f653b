import { waitFor, fireEvent } from '@testing-library/preact';
import { describe, expect, it } from 'vitest';
import { harness, settings } from './setup.ts';

describe('realtime', () => {
  it('opens the stream for the app and visitor once the first ping has answered (the server streams only to known visitors)', async () => {
    const h = harness();
    const booting = h.w.boot(settings());
    expect(h.streams.all).toHaveLength(0);
    await booting;
    expect(h.streams.all).toHaveLength(1);
    expect(h.fake.callsTo('POST', '/ping')).toHaveLength(1);
    const url = new URL(h.streams.current().url);
    expect(url.pathname).toBe('/v1/messenger/stream');
    expect(Object.fromEntries(url.searchParams)).toEqual({ app_id: 'app_test', visitor_id: h.w.getVisitorId() });
  });

  it('reconnects with backoff after an error and catches up with after=<last message id>', async () => {
    const h = harness({ deps: { pollMs: 60_000 } }); // no polling: only the reconnect catches up
    await h.w.boot(settings());
    h.w.show();
    const box = await h.ui().findByRole('textbox', { name: 'Message' });
    fireEvent.input(box, { target: { value: 'question' } });
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(h.fake.conversations.size).toBe(1));
    const convId = [...h.fake.conversations.keys()][0]!;
    const last = h.fake.conversations.get(convId)!.messages.at(-1)!.id;
    const first = h.streams.current();
    first.open();
    await waitFor(() => expect(h.fake.callsTo('GET', `/conversations/${convId}/messages`).length).toBeGreaterThan(0));
    first.fail();
    expect(first.closed).toBe(true);
    h.fake.reply(convId, 'answer sent while offline'); // never pushed on a stream
    await waitFor(() => expect(h.streams.all).toHaveLength(2));
    const before = h.fake.callsTo('GET', `/conversations/${convId}/messages`).length;
    h.streams.current().open();
    await h.ui().findByText('answer sent while offline');
    const catchUp = h.fake.callsTo('GET', `/conversations/${convId}/messages`)[before]!;
    expect(catchUp.query.after).toBe(last);
  });

  it('a merge event re-fetches the conversations and the contact', async () => {
    const h = harness();
    await h.w.boot(settings());
    const lists = h.fake.callsTo('GET', '/conversations').length;
    const pings = h.fake.callsTo('POST', '/ping').length;
    h.streams.current().emit('merge', { from: 'c1', into: 'u1', trigger: 'cookie' });
    await waitFor(() => expect(h.fake.callsTo('GET', '/conversations').length).toBeGreaterThan(lists));
    await waitFor(() => expect(h.fake.callsTo('POST', '/ping').length).toBeGreaterThan(pings));
  });

  it('the unread event drives the badge and onUnreadCountChange', async () => {
    const h = harness();
    const seen: number[] = [];
    h.w.onUnreadCountChange((n) => seen.push(n));
    await h.w.boot(settings());
    await waitFor(() => expect(h.fake.callsTo('GET', '/conversations').length).toBeGreaterThan(0));
    await new Promise((r) => setTimeout(r, 30)); // let the boot-time list settle first
    h.streams.current().emit('unread', { unread_count: 3 });
    await waitFor(() => expect(seen.at(-1)).toBe(3));
    const launcher = await h.ui().findByRole('button', { name: 'Open chat' });
    await waitFor(() => expect(launcher.textContent).toContain('3 unread'));
  });

  it('polls when there is no EventSource, and still gets replies', async () => {
    const h = harness({ deps: { eventSource: null } });
    await h.w.boot(settings());
    h.w.show();
    const box = await h.ui().findByRole('textbox', { name: 'Message' });
    fireEvent.input(box, { target: { value: 'hi' } });
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(h.fake.conversations.size).toBe(1));
    const convId = [...h.fake.conversations.keys()][0]!;
    h.fake.reply(convId, 'polled reply');
    await h.ui().findByText('polled reply');
  });

  it('a malformed stream event is reported, not thrown', async () => {
    const h = harness();
    await h.w.boot(settings());
    const es = h.streams.current();
    (es as unknown as { listeners: Map<string, Array<(e: MessageEvent) => void>> }).listeners
      .get('message')!
      .forEach((fn) => fn(new MessageEvent('message', { data: '{not json' })));
    expect(h.errors).toContainEqual(expect.objectContaining({ title: 'Bad stream event' }));
  });
});
