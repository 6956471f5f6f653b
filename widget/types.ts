/** Settings given to `boot` (and, partly, to `update`). Unknown keys are custom attributes. */
export interface Settings {
  /** The app (workspace) id. Required. */
  app_id: string;
  /** Base URL of the Parley server, e.g. `https://chat.example.com`. Defaults to the page origin. */
  api_base?: string;
  /** Logged-in person's id in the host site. Makes the ping a login ping (rule R2). */
  user_id?: string;
  /** Logged-in person's email. */
  email?: string;
  /** Logged-in person's display name. */
  name?: string;
  /** Hex HMAC-SHA256 of `user_id` (or of `email`) keyed with the app secret (rule R14). */
  user_hash?: string;
  /** Cookie domain, e.g. `.example.com`, to share the visitor across subdomains. */
  cookie_domain?: string;
  /** Theme colour of the launcher and header (any CSS colour). */
  color?: string;
  /** Custom attributes. */
  [attribute: string]: unknown;
}

/** What `update` accepts: any subset of the settings except `app_id`. */
export type UpdateData = Partial<Omit<Settings, 'app_id'>>;

export interface Contact {
  id: string;
  role: 'visitor' | 'lead' | 'user';
  user_id: string | null;
  email: string | null;
  name: string | null;
}

export interface Message {
  id: string;
  body: string;
  author: { type: 'contact' | 'agent'; id: string };
  created_at: string;
  conversation_id?: string;
  client_id?: string;
}

export interface ConversationSummary {
  id: string;
  last_message: Message | null;
  unread_count: number;
  updated_at: string;
}

export interface PingAnswer {
  contact: Contact;
  merge: { status: 'none' | 'pending' | 'done' };
  unread_count: number;
}

/** A failed call: `status` 0 means the network failed before an HTTP answer. */
export interface ApiError {
  status: number;
  type: string;
  title: string;
  detail: string;
}

/** Typed outcome of every operation that can fail. */
export type Result<T> = { ok: true; value: T } | { ok: false; error: ApiError };

export interface UserClaim {
  user_id?: string;
  email?: string;
  name?: string;
  user_hash?: string;
}
