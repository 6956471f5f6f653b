import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

const BUDGET = 16 * 1024;

describe('size budget', () => {
  it('dist/parley.js (Preact, js-cookie and idb-keyval included) is at most 16 KiB gzip', () => {
    const raw = readFileSync('dist/parley.js');
    const gz = gzipSync(raw, { level: 9 }).length;
    console.log(`parley.js: ${raw.length} bytes, ${gz} bytes gzip (budget ${BUDGET})`);
    expect(gz).toBeLessThanOrEqual(BUDGET);
  });

  it('the snippet a site pastes is under 600 bytes', () => {
    const bytes = Buffer.byteLength(readFileSync('widget/snippet.html', 'utf8'));
    console.log(`snippet.html: ${bytes} bytes`);
    expect(bytes).toBeLessThan(600);
  });
});
