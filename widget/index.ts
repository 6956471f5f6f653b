/**
 * Parley messenger widget, ES module entry.
 *
 * @example
 * ```ts
 * import { boot, onUnreadCountChange } from 'parley';
 * boot({ app_id: 'app_123', api_base: 'https://chat.example.com', user_id: '42', user_hash: '…' });
 * onUnreadCountChange((n) => (document.title = n ? `(${n}) My site` : 'My site'));
 * ```
 */
import { createWidget } from './widget.ts';

const parley = createWidget();

/** Starts the widget: visitor cookie, first ping (a login ping when `user_id`/`email` is set), UI. */
export const boot = parley.boot;
/** Updates settings or identity; pings (throttled unless the identity changed). */
export const update = parley.update;
/** Logout (rule R15): deletes the visitor cookie and local data, and stops the widget in this site's other tabs; the next boot is a new visitor. */
export const shutdown = parley.shutdown;
/** Opens the messenger panel. */
export const show = parley.show;
/** Closes the messenger panel. */
export const hide = parley.hide;
/** Opens a new conversation, with the composer prefilled with `text`. */
export const showNewMessage = parley.showNewMessage;
/** Records an event for this visitor, e.g. `trackEvent('upgraded', { plan: 'pro' })`. */
export const trackEvent = parley.trackEvent;
/** Calls `fn` with the unread count whenever it changes; returns the unsubscribe function. */
export const onUnreadCountChange = parley.onUnreadCountChange;
/** Calls `fn` when the panel opens; returns the unsubscribe function. */
export const onShow = parley.onShow;
/** Calls `fn` when the panel closes; returns the unsubscribe function. */
export const onHide = parley.onHide;
/** The current visitor id, or null before `boot`. */
export const getVisitorId = parley.getVisitorId;

export type { Outcome, Parley } from './widget.ts';
export type { ApiError, Settings, UpdateData } from './types.ts';
