const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAIL = /[.,;:!?)\]}]+$/;

/** A URL when `raw` parses as one, else null (the caller then shows plain text). */
function parse(raw: string): URL | null {
  try {
    return new URL(raw);
  } catch (e) {
    if (e instanceof TypeError) return null;
    throw e;
  }
}

/** Splits text into plain strings and http(s) URLs. Pure; never produces markup. */
export function linkParts(text: string): Array<{ text: string; href?: string }> {
  const out: Array<{ text: string; href?: string }> = [];
  let at = 0;
  for (const m of text.matchAll(URL_RE)) {
    const raw = m[0].replace(TRAIL, '');
    const u = parse(raw);
    const href = u && (u.protocol === 'http:' || u.protocol === 'https:') ? u.href : undefined;
    if (!href) continue;
    if (m.index > at) out.push({ text: text.slice(at, m.index) });
    out.push({ text: raw, href });
    at = m.index + raw.length;
  }
  if (at < text.length) out.push({ text: text.slice(at) });
  return out;
}

/** Message body as text nodes; only http(s) URLs become links, opened safely in a new tab. */
export function Text({ text }: { text: string }) {
  return (
    <>
      {linkParts(text).map((p, i) =>
        p.href ? (
          <a key={i} href={p.href} target="_blank" rel="noopener noreferrer">
            {p.text}
          </a>
        ) : (
          p.text
        ),
      )}
    </>
  );
}
