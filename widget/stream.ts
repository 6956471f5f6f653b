/** The part of EventSource the widget uses; tests inject a fake. */
export interface EventSourceLike {
  addEventListener(type: string, fn: (e: MessageEvent) => void): void;
  close(): void;
  onopen: ((e: Event) => void) | null;
  onerror: ((e: Event) => void) | null;
}

/** Opens an event stream; `null` when the platform has no EventSource. */
export type EventSourceFactory = (url: string) => EventSourceLike;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
}

export interface StreamOptions {
  url: string;
  factory: EventSourceFactory | null;
  events: string[];
  onEvent(type: string, data: unknown): void;
  /** Connected (first time or after a reconnect): time to catch up. */
  onUp(): void;
  /** Not connected (failed, or never possible): time to poll. */
  onDown(): void;
  onBadEvent(e: unknown): void;
  timers: Timers;
  delay(attempt: number): number;
}

/**
 * Keeps one EventSource open, reconnecting with backoff after every failure (instead of the
 * browser's fixed retry) so reconnects spread out. Returns the function that closes it for good.
 */
export function openStream(o: StreamOptions): () => void {
  let es: EventSourceLike | undefined;
  let timer: unknown;
  let attempt = 0;
  let closed = false;
  const connect = (): void => {
    if (closed) return;
    if (!o.factory) return o.onDown();
    try {
      es = o.factory(o.url);
    } catch (e) {
      o.onBadEvent(e);
      return o.onDown();
    }
    const me = es;
    me.onopen = () => {
      attempt = 0;
      o.onUp();
    };
    me.onerror = () => {
      if (closed || es !== me) return;
      me.close();
      es = undefined;
      o.onDown();
      timer = o.timers.setTimeout(connect, o.delay(attempt++));
    };
    for (const type of o.events)
      me.addEventListener(type, (e) => {
        let data: unknown;
        try {
          data = JSON.parse(e.data as string);
        } catch (err) {
          return o.onBadEvent(err);
        }
        o.onEvent(type, data);
      });
  };
  connect();
  return () => {
    closed = true;
    o.timers.clearTimeout(timer);
    es?.close();
  };
}
