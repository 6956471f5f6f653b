// Script-tag entry (dist/parley.js): installs window.Parley and replays calls the snippet queued.
import { getWindow } from './env.ts';
import * as api from './index.ts';
import { install } from './install.ts';

const w = getWindow();
if (w) install(w as unknown as Record<string, unknown>, api as unknown as Record<string, unknown>);
