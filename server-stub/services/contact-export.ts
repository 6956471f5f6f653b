/**
 * CSV export of an app's live contacts (`GET /v1/exports/contacts.csv`), streamed page by page so
 * an app of any size is exported in bounded memory. Visitors are left out, as in default contact
 * lists. Cells that a spreadsheet would run as a formula are neutralised (OWASP "CSV injection").
 */
import type { App } from '../storage/apps.ts';
import type { ContactRow } from '../storage/contacts.ts';
import type { Services } from './context.ts';

export const CONTACT_EXPORT_COLUMNS = ['id', 'role', 'user_id', 'email', 'name', 'created_via', 'created_at'] as const;

/** Characters that make a spreadsheet treat a cell as a formula (or as the start of one). */
const FORMULA_START = new Set(['=', '+', '-', '@', '\t', '\r']);

/**
 * One CSV cell (RFC 4180): null is empty; a value starting with a formula character gets a
 * leading `'` so it shows as text; a value with a comma, quote or line break is quoted.
 *
 * @example
 * csvCell('=HYPERLINK("http://x")') // => "'=HYPERLINK(""http://x"")" quoted
 */
export function csvCell(value: string | null): string {
  if (value === null) return '';
  const text = value.length > 0 && FORMULA_START.has(value[0]!) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(cells: (string | null)[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

function contactLine(c: ContactRow): string {
  return csvLine(CONTACT_EXPORT_COLUMNS.map((k) => c[k]));
}

/** The export as a byte stream: the header row, then live leads and users by id, `pageSize` rows a query. */
export function exportContactsCsv(s: Services, app: App, pageSize = 1000): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let cursor: string | null = null;
  let headerSent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!headerSent) {
        headerSent = true;
        controller.enqueue(encoder.encode(csvLine([...CONTACT_EXPORT_COLUMNS])));
        return;
      }
      let q = s.db.selectFrom('contacts').selectAll().where('app_id', '=', app.id).where('merged_into', 'is', null).where('role', '!=', 'visitor');
      if (cursor !== null) q = q.where('id', '>', cursor);
      const rows = await q.orderBy('id').limit(pageSize).execute();
      if (rows.length === 0) {
        controller.close();
        return;
      }
      cursor = rows[rows.length - 1]!.id;
      controller.enqueue(encoder.encode(rows.map(contactLine).join('')));
    },
  });
}

/** The HTTP answer: `text/csv`, offered as a download. */
export function contactsCsvResponse(s: Services, app: App): Response {
  return new Response(exportContactsCsv(s, app), {
    headers: { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': 'attachment; filename="contacts.csv"', 'cache-control': 'no-store' },
  });
}
