// Script-tag entry (dist/parley.js): installs window.Parley and replays calls the snippet queued.
// The same widget methods as the ES entry (index.ts), without its module namespace in the bundle.
import { getWindow } from './env.ts';
import { install } from './install.ts';
import { createWidget } from './widget.ts';

const w = getWindow();
if (w) install(w as unknown as Record<string, unknown>, createWidget() as unknown as Record<string, unknown>);
