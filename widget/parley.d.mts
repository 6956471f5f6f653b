// Types for dist/parley.mjs. Kept by hand; test/widget/types.test.ts checks they match widget/index.ts.

/** Settings given to `boot`. Unknown keys are custom attributes. */
export interface Settings {
  app_id: string;
  api_base?: string;
  user_id?: string;
  email?: string;
  name?: string;
  user_hash?: string;
  cookie_domain?: string;
  color?: string;
  [attribute: string]: unknown;
}

/** What `update` accepts: any subset of the settings except `app_id`. */
export type UpdateData = Partial<Omit<Settings, 'app_id'>>;

/** A failed call: `status` 0 means the network failed before an HTTP answer. */
export interface ApiError {
  status: number;
  type: string;
  title: string;
  detail: string;
}

/** Outcome of a public call that talks to the server. */
export type Outcome = { ok: true } | { ok: false; error: ApiError };

/** Starts the widget: visitor cookie, first ping (a login ping when `user_id`/`email` is set), UI. */
export declare function boot(settings: Settings): Promise<Outcome>;
/** Updates settings or identity; pings (throttled unless the identity changed). */
export declare function update(data?: UpdateData): Promise<Outcome>;
/** Logout: deletes the visitor cookie and local data, and stops the widget in this site's other tabs; the next boot is a new visitor. */
export declare function shutdown(): Promise<Outcome>;
/** Opens the messenger panel. */
export declare function show(): void;
/** Closes the messenger panel. */
export declare function hide(): void;
/** Opens a new conversation, with the composer prefilled with `text`. */
export declare function showNewMessage(text?: string): void;
/** Records an event for this visitor. */
export declare function trackEvent(name: string, metadata?: Record<string, unknown>): Promise<Outcome>;
/** Calls `fn` with the unread count whenever it changes; returns the unsubscribe function. */
export declare function onUnreadCountChange(fn: (count: number) => void): () => void;
/** Calls `fn` when the panel opens; returns the unsubscribe function. */
export declare function onShow(fn: () => void): () => void;
/** Calls `fn` when the panel closes; returns the unsubscribe function. */
export declare function onHide(fn: () => void): () => void;
/** The current visitor id, or null before `boot`. */
export declare function getVisitorId(): string | null;
