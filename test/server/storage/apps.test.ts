import { describe, expect, it } from 'vitest';
import { normaliseOrigin, originAllowed, type App } from '../../../server-stub/storage/apps.ts';

describe('allowed origins', () => {
  it.each([
    ['https://shop.example', 'https://shop.example'],
    ['https://Shop.Example/', 'https://shop.example'],
    ['  http://localhost:5173 ', 'http://localhost:5173'],
    ['https://shop.example:443', 'https://shop.example'],
    ['*', '*'],
  ])('%j is kept as a browser sends it: %j', (input, origin) => {
    expect(normaliseOrigin(input)).toBe(origin);
  });

  it.each(['shop.example', 'ftp://shop.example', 'https://shop.example/path', 'https://user@shop.example', 'https://shop.example/?q=1', 'not a url', ''])('%j is no origin', (input) => {
    expect(normaliseOrigin(input)).toBeNull();
  });

  it('an origin typed with a trailing slash and capitals admits the browser on it', () => {
    const app = { allowed_origins: [normaliseOrigin('https://Shop.example/')!] } as App;
    expect(originAllowed(app, 'https://shop.example')).toBe(true);
    expect(originAllowed(app, 'https://evil.example')).toBe(false);
  });
});
