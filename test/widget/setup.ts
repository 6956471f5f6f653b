// Shared test harness: strict msw, a fake EventSource, and a booted widget with its fake server.
import { within } from '@testing-library/preact';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { memoryKV, type KV } from '../../widget/storage.ts';
import type { EventSourceLike } from '../../widget/stream.ts';
import type { Settings } from '../../widget/types.ts';
import { createWidget, type Parley, type WidgetDeps } from '../../widget/widget.ts';
import { BASE, createFakeServer } from './handlers.ts';

export const server = setupServer();
const booted: Parley[] = [];

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(async () => {
  // Shut widgets down while their handlers still answer, then reset handlers and the page.
  await Promise.all(booted.splice(0).map((w) => w.shutdown()));
  server.resetHandlers();
  for (const c of document.cookie.split(';')) {
    const name = c.split('=')[0]!.trim();
    if (name) document.cookie = `${name}=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/`;
  }
  document.body.innerHTML = '';
});
afterAll(() => server.close());

/** A controllable EventSource: tests open, fail and feed it. */
export class FakeEventSource implements EventSourceLike {
  onopen: ((e: Event) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;
  closed = false;
  private listeners = new Map<string, Array<(e: MessageEvent) => void>>();
  constructor(readonly url: string) {}
  addEventListener(type: string, fn: (e: MessageEvent) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  close(): void {
    this.closed = true;
  }
  open(): void {
    this.onopen?.(new Event('open'));
  }
  fail(): void {
    this.onerror?.(new Event('error'));
  }
  emit(type: string, data: unknown): void {
    for (const fn of this.listeners.get(type) ?? []) fn(new MessageEvent(type, { data: JSON.stringify(data) }));
  }
}

export function fakeStreams() {
  const all: FakeEventSource[] = [];
  return {
    all,
    factory: (url: string) => {
      const es = new FakeEventSource(url);
      all.push(es);
      return es;
    },
    /** The newest stream that is not closed. */
    current: () => {
      const es = all.filter((e) => !e.closed).at(-1);
      if (!es) throw new Error('no open stream');
      return es;
    },
  };
}

export interface Harness {
  w: Parley;
  fake: ReturnType<typeof createFakeServer>;
  streams: ReturnType<typeof fakeStreams>;
  kv: KV;
  errors: unknown[];
  /** Queries inside the widget's shadow root. */
  ui: () => ReturnType<typeof within>;
}

/** A widget wired to a fresh fake server (or the given one), not yet booted. */
export function harness(o: { fake?: ReturnType<typeof createFakeServer>; kv?: KV; deps?: WidgetDeps } = {}): Harness {
  const fake = o.fake ?? createFakeServer();
  if (!o.fake) server.use(...fake.handlers);
  const streams = fakeStreams();
  const kv = o.kv ?? memoryKV();
  const errors: unknown[] = [];
  const w = createWidget({
    eventSource: streams.factory,
    kv,
    throttleMs: 50,
    pollMs: 50,
    backoffMs: 10,
    random: () => 0,
    onError: (e) => errors.push(e),
    ...o.deps,
  });
  booted.push(w);
  return { w, fake, streams, kv, errors, ui: () => within(shadowContent()) };
}

export const settings = (extra: Partial<Settings> = {}): Settings => ({ app_id: 'app_test', api_base: BASE, ...extra });

/** The element Preact renders into, inside the open shadow root. */
export function shadowContent(): HTMLElement {
  const host = document.querySelector('[data-parley]');
  const el = host?.shadowRoot?.querySelector('div');
  if (!el) throw new Error('widget is not mounted');
  return el as HTMLElement;
}

export const cookieValue = (name: string): string | undefined =>
  document.cookie
    .split(';')
    .map((c) => c.trim().split('='))
    .find(([k]) => k === name)?.[1];
