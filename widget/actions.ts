import type { Outbox } from './outbox.ts';
import type { Session } from './session.ts';
import type { Store } from './store.ts';
import type { Sync } from './sync.ts';

/** The longest message body the server takes (http-api). */
export const MAX = 10_000;

/** Letters, an @, a dot in the domain: enough to catch typos before the server checks properly. */
export const validEmail = (v: string): boolean => /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/.test(v.trim());

export interface ActionDeps {
  store: Store;
  outbox: Outbox;
  sync: Sync;
  session: Session;
  visitor(): string;
  newId(): string;
  now(): number;
}

/** What the UI can ask for. The UI calls these; they change state and call transport, never the UI. */
export function createActions(d: ActionDeps) {
  const { store, outbox, sync } = d;
  const isPendingStart = (k: string) => outbox.items().some((i) => i.client_id === k && !i.conversation_id && !i.start_id);

  const actions = {
    show(): void {
      const s = store.get();
      const empty = !s.conversations.length && !s.outbox.length;
      store.set({ open: true, thread: s.thread ?? (empty ? 'new' : null) });
      if (s.thread && s.messages[s.thread]) void sync.read(s.thread);
    },
    hide: (): void => store.set({ open: false }),
    toggle: (): void => (store.get().open ? actions.hide() : actions.show()),
    list: (): void => store.set({ thread: null }),
    compose: (): void => store.set({ thread: 'new' }),
    async open(id: string): Promise<void> {
      store.set({ thread: id });
      if (isPendingStart(id)) return;
      await sync.thread(id);
      await sync.read(id);
    },
    setDraft: (draft: string): void => store.set({ draft }),
    dismiss: (): void => store.set({ banner: null }),
    retry: (clientId: string): Promise<void> => outbox.retry(clientId),
    discard: (clientId: string): Promise<void> => outbox.discard(clientId),
    /**
     * Queues the draft: saved first, then sent; the first message starts the conversation (R1).
     * Longer than the server takes: refused here with a message, the text stays in the composer.
     */
    async send(text: string): Promise<void> {
      const body = text.trim();
      if (!body) return;
      if (body.length > MAX) return store.set({ draft: text, banner: 'Message too long: at most 10,000 characters.' });
      const key = store.get().thread;
      const client_id = d.newId();
      const fresh = !key || key === 'new';
      const pending = !fresh && isPendingStart(key);
      store.set({ draft: '', ...(fresh ? { thread: client_id } : {}) });
      await outbox.add({
        client_id,
        visitor_id: d.visitor(),
        body,
        created_at: new Date(d.now()).toISOString(),
        conversation_id: fresh || pending ? null : key,
        ...(pending ? { start_id: key } : {}),
        ...(fresh && d.session.user() ? { user: d.session.user() } : {}),
      });
    },
    /** "Get notified by email": returns an error text to show, or null when saved. */
    async leadEmail(email: string): Promise<string | null> {
      if (!validEmail(email)) return 'Please enter a valid email address.';
      const r = await d.session.ping({ lead: { email: email.trim() } });
      return r.ok ? null : `Could not save your email: ${r.error.title}`;
    },
  };
  return actions;
}

export type Actions = ReturnType<typeof createActions>;
