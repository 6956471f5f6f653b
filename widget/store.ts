import type { OutboxItem } from './outbox.ts';
import type { Contact, ConversationSummary, Message } from './types.ts';

/** Everything the UI shows. Changed only through `Store.set`; the UI reads and subscribes. */
export interface State {
  open: boolean;
  /** `null`: the conversation list; `'new'`: an empty new conversation; otherwise a thread key. */
  thread: string | null;
  conversations: ConversationSummary[];
  messages: Record<string, Message[]>;
  outbox: OutboxItem[];
  unread: number;
  contact: Contact | null;
  draft: string;
  banner: string | null;
  /** Text for the polite live region (new messages). */
  announce: string;
  color: string | undefined;
}

export const initialState = (): State => ({
  open: false,
  thread: null,
  conversations: [],
  messages: {},
  outbox: [],
  unread: 0,
  contact: null,
  draft: '',
  banner: null,
  announce: '',
  color: undefined,
});

export interface Store {
  get(): State;
  set(patch: Partial<State> | ((s: State) => Partial<State>)): void;
  subscribe(fn: (s: State) => void): () => void;
}

export function createStore(init: State = initialState()): Store {
  let state = init;
  const subs = new Set<(s: State) => void>();
  return {
    get: () => state,
    set(p) {
      state = { ...state, ...(typeof p === 'function' ? p(state) : p) };
      subs.forEach((f) => f(state));
    },
    subscribe(fn) {
      subs.add(fn);
      return () => void subs.delete(fn);
    },
  };
}

/** Adds messages to a thread, once each (by id), sorted by id (the server's order, oldest first). Pure. */
export function withMessages(s: State, key: string, add: Message[]): Partial<State> {
  const have = s.messages[key] ?? [];
  const ids = new Set(have.map((m) => m.id));
  const fresh = add.filter((m) => !ids.has(m.id) && (ids.add(m.id), true));
  if (!fresh.length && s.messages[key]) return {};
  return { messages: { ...s.messages, [key]: [...have, ...fresh].sort((a, b) => (a.id < b.id ? -1 : 1)) } };
}
