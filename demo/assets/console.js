// Parley operator console. Plain browser module, no build step. It only uses the admin API
// (Authorization: Bearer <admin token>) on this origin. Everything from the server is put into
// the page with textContent / createElement: never as HTML.

const TOKEN_KEY = 'parley.console.token';
const POLL_MS = 1500;
const LIST_LIMIT = 200;
const ROLES = /** @type {const} */ (['visitor', 'lead', 'user']);

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the console page`);
  return el;
};

/** Builds an element: h('li', { class: 'x', dataset: {...}, on: { click } }, child, 'text'). */
function h(tag, props = {}, ...children) {
  return fill(document.createElement(tag), props, ...children);
}

/** Replaces an element's children; null, undefined and false children are left out. */
function setChildren(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, ...children);
}

function fill(el, props, ...children) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'on') for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  /** @param {{ type?: string, title?: string, status: number, detail?: string }} problem */
  constructor(problem) {
    super(problem.detail || problem.title || `HTTP ${problem.status}`);
    this.problem = problem;
    this.status = problem.status;
  }
}

let token = '';

async function api(method, path, { json, body, contentType } = {}) {
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
  if (json !== undefined) headers['content-type'] = 'application/json';
  if (contentType) headers['content-type'] = contentType;
  let res;
  try {
    res = await fetch(path, { method, headers, body: json !== undefined ? JSON.stringify(json) : body, cache: 'no-store' });
  } catch (err) {
    throw new ApiError({ status: 0, title: 'Server unreachable', detail: `${method} ${path} failed: ${err instanceof Error ? err.message : String(err)}` });
  }
  if (!res.ok) throw new ApiError(await problemOf(res));
  if (res.status === 204) return null;
  return res.json();
}

async function problemOf(res) {
  const text = await res.text().catch(() => '');
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === 'object') return { status: res.status, title: res.statusText, ...parsed };
  } catch {
    // Not problem+json (a proxy, a crash page): fall through and show the raw text.
  }
  return { status: res.status, title: res.statusText || 'Request failed', detail: text.slice(0, 300) };
}

// ---------------------------------------------------------------- alerts and status

const alerts = new Map();

function showProblem(err, key = `a${Math.random()}`) {
  const problem = err instanceof ApiError ? err.problem : { status: 0, title: 'Something went wrong', detail: err instanceof Error ? err.message : String(err) };
  const title = `${problem.title || 'Error'}${problem.status ? ` (${problem.status})` : ''}`;
  showAlert(key, title, problem.detail || '', 'error');
}

function showAlert(key, title, detail, kind) {
  dismissAlert(key);
  const el = h(
    'div',
    { class: `alert ${kind}`, dataset: { key } },
    h('div', {}, h('strong', { text: title }), detail ? h('p', { class: 'alert-detail', text: detail }) : null),
    h('button', { type: 'button', 'aria-label': 'Dismiss', text: '×', on: { click: () => dismissAlert(key) } }),
  );
  alerts.set(key, el);
  $('alerts').append(el);
}

function dismissAlert(key) {
  alerts.get(key)?.remove();
  alerts.delete(key);
}

function setStatus(kind, text) {
  const status = $('status');
  status.classList.toggle('live', kind === 'live');
  status.classList.toggle('error', kind === 'error');
  if ($('status-text').textContent !== text) $('status-text').textContent = text;
}

// ---------------------------------------------------------------- formatting

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : dateTimeFmt.format(d);
}

/** Names we have seen for contact ids, so the audit log can say who, even after a merge. */
const labels = new Map();

function labelOf(contact) {
  if (!contact) return 'Unknown contact';
  const label = contact.name || contact.email || contact.user_id || `${contact.role === 'visitor' ? 'Visitor' : 'Lead'} ${String(contact.id).slice(-6)}`;
  if (contact.id) labels.set(contact.id, label);
  return label;
}

function labelOfId(id) {
  return labels.get(id) ?? `Contact …${String(id).slice(-6)}`;
}

function initials(label) {
  const words = label.replace(/[^\p{L}\p{N} ]/gu, ' ').trim().split(/\s+/).filter(Boolean);
  return ((words[0]?.[0] ?? '?') + (words[1]?.[0] ?? '')).toUpperCase();
}

/** Re-render only what changed: polling must not make the page flicker or lose focus. */
const lastJson = new Map();
function changed(key, value) {
  const json = JSON.stringify(value);
  if (lastJson.get(key) === json) return false;
  lastJson.set(key, json);
  return true;
}

// ---------------------------------------------------------------- selection

let selectedId = new URLSearchParams(location.hash.slice(1)).get('contact') || null;
let selectedConvId = null;
let selectedContact = null;

function select(id) {
  if (selectedId !== id) selectedConvId = null;
  selectedId = id;
  history.replaceState(null, '', id ? `#contact=${encodeURIComponent(id)}` : location.pathname);
  $('detail-notice').hidden = true;
  for (const key of ['detail', 'convs', 'messages']) lastJson.delete(key);
  for (const li of document.querySelectorAll('.contact')) li.setAttribute('aria-current', String(li.dataset.contactId === id));
  refreshNow();
  // On a phone the detail sits below the lists: bring it into view.
  if (id && matchMedia('(max-width: 820px)').matches) document.querySelector('.detail')?.scrollIntoView({ behavior: 'smooth' });
}

// ---------------------------------------------------------------- contacts

async function refreshContacts() {
  // Newest first: an operator looks for who just arrived, and a long list must not hide them.
  const lists = await Promise.all(ROLES.map((role) => api('GET', `/v1/contacts?role=${role}&order=newest&limit=${LIST_LIMIT}`)));
  ROLES.forEach((role, i) => {
    const contacts = lists[i]?.data ?? [];
    for (const c of contacts) labelOf(c);
    // Compared on what the list shows only: last_seen_at and updated_at change every few seconds
    // for an active visitor, and re-rendering for them took the keyboard focus away.
    if (changed(`list-${role}`, [lists[i]?.next_cursor ?? null, contacts.map(shown)])) renderGroup(role, contacts, lists[i]?.next_cursor);
  });
}

/** The fields of a contact that its list item shows. */
function shown(c) {
  const p = c.merge_pending_into;
  return [c.id, c.role, c.name, c.email, c.user_id, c.created_via, c.created_at, p ? [p.id, p.name, p.email, p.user_id] : null];
}

function renderGroup(role, contacts, nextCursor) {
  $(`count-${role}`).textContent = nextCursor ? `${contacts.length}+` : String(contacts.length);
  const list = $(`list-${role}`);
  if (contacts.length === 0) {
    list.replaceChildren(h('li', { class: 'empty', text: { visitor: 'No visitors right now.', lead: 'No leads yet.', user: 'No users yet.' }[role] }));
    return;
  }
  list.replaceChildren(...contacts.map(contactItem));
}

function contactItem(contact) {
  const label = labelOf(contact);
  const meta = [contact.email && contact.email !== label ? contact.email : null, contact.user_id && contact.user_id !== label ? contact.user_id : null, `via ${contact.created_via ?? 'messenger'}`]
    .filter(Boolean)
    .join(' · ');
  const pending = contact.merge_pending_into;
  return h(
    'li',
    { class: 'contact', dataset: { contactId: contact.id, role: contact.role }, 'aria-current': String(contact.id === selectedId) },
    h(
      'button',
      { type: 'button', class: 'contact-select', on: { click: () => select(contact.id) } },
      h('span', { class: 'avatar', 'aria-hidden': 'true', text: initials(label) }),
      h('span', { class: 'contact-name', text: label }),
      h('span', { class: 'contact-time', text: when(contact.created_at) }),
      h('span', { class: 'contact-meta', text: meta }),
    ),
    pending ? pendingBox(contact, pending) : null,
  );
}

/** A lead waiting to merge: say into whom, and offer to do it now (rule R10). */
function pendingBox(lead, user) {
  const userLabel = user.name || user.email || user.user_id || 'a user';
  labels.set(user.id, userLabel);
  const extra = user.email && user.email !== userLabel ? ` (${user.email})` : '';
  const button = h('button', {
    type: 'button',
    class: 'btn btn-secondary btn-small',
    text: 'Merge now',
    'aria-label': `Merge now: ${labelOf(lead)} into ${userLabel}`,
    on: {
      click: async () => {
        button.disabled = true;
        try {
          await api('POST', '/v1/contacts/merge', { json: { from: lead.id, into: user.id } });
          showAlert(`merged-${lead.id}`, 'Merged', `${labelOf(lead)} was merged into ${userLabel}.`, 'ok');
          setTimeout(() => dismissAlert(`merged-${lead.id}`), 4000);
          if (selectedId === lead.id) select(user.id);
          else refreshNow();
        } catch (err) {
          button.disabled = false;
          showProblem(err);
        }
      },
    },
  });
  return h(
    'div',
    { class: 'pending', dataset: { pendingInto: user.id } },
    h('span', {}, 'Waiting to merge into ', h('strong', { text: userLabel }), `${extra} when they next log in.`),
    button,
  );
}

// ---------------------------------------------------------------- selected contact

async function refreshSelected() {
  if (!selectedId) {
    $('detail').hidden = true;
    $('detail-empty').hidden = false;
    return;
  }
  let contact;
  try {
    contact = await api('GET', `/v1/contacts/${encodeURIComponent(selectedId)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      selectedId = null;
      history.replaceState(null, '', location.pathname);
      showAlert('gone', 'Contact not found', 'The selected contact no longer exists.', 'error');
      return refreshSelected();
    }
    throw err;
  }
  if (contact.id !== selectedId) {
    // A merged lead's id answers with the user it was merged into (its tombstone, rule R6).
    const from = labelOfId(selectedId);
    selectedId = contact.id;
    history.replaceState(null, '', `#contact=${encodeURIComponent(contact.id)}`);
    const notice = $('detail-notice');
    notice.textContent = `${from} was merged into ${labelOf(contact)}. Its conversations are here now.`;
    notice.hidden = false;
    for (const li of document.querySelectorAll('.contact')) li.setAttribute('aria-current', String(li.dataset.contactId === contact.id));
  }
  selectedContact = contact;
  if (changed('detail', contact)) renderDetail(contact);

  const convs = (await api('GET', `/v1/conversations?contact_id=${encodeURIComponent(contact.id)}&limit=1000`))?.data ?? [];
  const sorted = [...convs].sort((a, b) => String(b.updated_at ?? b.created_at ?? '').localeCompare(String(a.updated_at ?? a.created_at ?? '')));
  if (!sorted.some((c) => c.id === selectedConvId)) selectedConvId = sorted[0]?.id ?? null;
  if (changed('convs', { sorted, selectedConvId })) renderConversations(sorted);

  if (selectedConvId) {
    // Every page, oldest first: a long conversation is not cut at its first thousand messages.
    const messages = [];
    for (let cursor = null, pages = 0; pages < 100; pages++) {
      const page = await api('GET', `/v1/conversations/${encodeURIComponent(selectedConvId)}/messages?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      messages.push(...(page?.data ?? []));
      cursor = page?.next_cursor ?? null;
      if (!cursor) break;
    }
    if (changed('messages', { selectedConvId, messages, who: labelOf(contact) })) renderThread(messages);
  }
}

function renderDetail(contact) {
  $('detail-empty').hidden = true;
  $('detail').hidden = false;
  const label = labelOf(contact);
  $('detail-title').textContent = label;
  $('detail-sub').textContent = [contact.email, contact.user_id ? `user_id ${contact.user_id}` : null, `created via ${contact.created_via ?? 'messenger'}`, contact.created_at ? `since ${when(contact.created_at)}` : null]
    .filter(Boolean)
    .join(' · ');
  const pending = contact.merge_pending_into;
  const pendingNote = $('detail-pending');
  pendingNote.hidden = !pending;
  if (pending) {
    const into = pending.name || pending.email || pending.user_id || 'a user';
    pendingNote.textContent = `Waiting to merge into ${into}${pending.email && pending.email !== into ? ` (${pending.email})` : ''} when they next log in. Use “Merge now” in the list to merge at once.`;
  }
  const role = $('detail-role');
  role.textContent = contact.role;
  role.dataset.role = contact.role;

  const attrs = Object.entries(contact.attributes ?? {});
  $('detail-attrs').replaceChildren(
    attrs.length === 0
      ? h('p', { class: 'none', text: 'No attributes.' })
      : h('dl', { class: 'attrs' }, attrs.flatMap(([key, value]) => [h('dt', { text: key }), h('dd', { text: typeof value === 'string' ? value : JSON.stringify(value) })])),
  );

  const events = contact.events ?? [];
  $('detail-events').replaceChildren(
    events.length === 0
      ? h('p', { class: 'none', text: 'No events.' })
      : h(
          'table',
          { class: 'events' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Event' }), h('th', { scope: 'col', text: 'Count' }), h('th', { scope: 'col', text: 'First' }), h('th', { scope: 'col', text: 'Last' }))),
          h(
            'tbody',
            {},
            events.map((e) => h('tr', {}, h('td', { text: e.name }), h('td', { class: 'num', text: String(e.count) }), h('td', { text: when(e.first_at) }), h('td', { text: when(e.last_at) }))),
          ),
        ),
  );
  $('reply-label').textContent = `Reply to ${label}`;
}

function renderConversations(convs) {
  const list = $('conv-list');
  const wrap = document.querySelector('.thread-wrap');
  if (wrap instanceof HTMLElement) wrap.hidden = convs.length === 0;
  if (convs.length === 0) {
    list.replaceChildren(h('li', {}, h('p', { class: 'none', text: 'No conversations yet.' })));
    return;
  }
  list.replaceChildren(
    ...convs.map((conv, i) => {
      const preview = conv.last_message?.body ?? `Conversation ${convs.length - i}`;
      return h(
        'li',
        {},
        h(
          'button',
          {
            type: 'button',
            class: 'conv-tab',
            'aria-pressed': String(conv.id === selectedConvId),
            dataset: { conversationId: conv.id },
            on: {
              click: () => {
                selectedConvId = conv.id;
                lastJson.delete('messages');
                lastJson.delete('convs');
                refreshNow();
              },
            },
          },
          h('span', { text: preview }),
          h('small', { text: when(conv.updated_at ?? conv.created_at) }),
        ),
      );
    }),
  );
}

function renderThread(messages) {
  const thread = $('thread');
  const atBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 48;
  const contactLabel = selectedContact ? labelOf(selectedContact) : 'Contact';
  thread.replaceChildren(
    ...(messages.length === 0
      ? [h('li', { class: 'none', text: 'No messages yet.' })]
      : messages.map((m) => {
          const agent = m.author?.type === 'agent';
          return h(
            'li',
            { class: `msg ${agent ? 'agent' : 'from-contact'}`, dataset: { messageId: m.id } },
            h('span', { class: 'msg-meta', text: `${agent ? 'Operator' : contactLabel} · ${when(m.created_at)}` }),
            h('div', { class: 'msg-body', text: m.body }),
          );
        })),
  );
  if (atBottom || thread.dataset.conversationId !== selectedConvId) thread.scrollTop = thread.scrollHeight;
  thread.dataset.conversationId = selectedConvId ?? '';
}

$('reply-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLTextAreaElement} */ ($('reply-input'));
  const body = input.value.trim();
  $('reply-error').textContent = '';
  if (!body) {
    $('reply-error').textContent = 'Write something first.';
    return;
  }
  if (!selectedConvId) {
    $('reply-error').textContent = 'This contact has no conversation to reply to.';
    return;
  }
  const send = /** @type {HTMLButtonElement} */ ($('reply-send'));
  send.disabled = true;
  try {
    await api('POST', `/v1/conversations/${encodeURIComponent(selectedConvId)}/reply`, { json: { body } });
    input.value = '';
    refreshNow();
  } catch (err) {
    $('reply-error').textContent = err instanceof Error ? err.message : String(err);
    showProblem(err);
  } finally {
    send.disabled = false;
  }
});

$('reply-input').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    /** @type {HTMLFormElement} */ ($('reply-form')).requestSubmit();
  }
});

// ---------------------------------------------------------------- merge audit log

async function refreshMerges() {
  const merges = (await api('GET', '/v1/merges?limit=50'))?.data ?? [];
  if (!changed('merges', { merges, labels: merges.map((m) => [labelOfId(m.from), labelOfId(m.into)]) })) return;
  const sorted = [...merges].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  $('audit').replaceChildren(
    ...(sorted.length === 0
      ? [h('li', { class: 'none', text: 'No merges yet. Log in on the shop after chatting anonymously to see one.' })]
      : sorted.map((m) =>
          h(
            'li',
            { dataset: { mergeId: m.id, trigger: m.trigger } },
            h('span', { class: 'what' }, h('span', { class: 'trigger', text: m.trigger }), `${labelOfId(m.from)} → ${labelOfId(m.into)}`),
            h('small', { text: `${plural(m.conversations_moved, 'conversation')}, ${plural(m.events_moved, 'event')} moved · ${when(m.created_at)}` }),
          ),
        )),
  );
}

function plural(n, word) {
  const count = Number(n) || 0;
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

// ---------------------------------------------------------------- bulk merge

const bulkDry = /** @type {HTMLButtonElement} */ ($('bulk-dry'));
const bulkRun = /** @type {HTMLButtonElement} */ ($('bulk-run'));
const includeApi = /** @type {HTMLInputElement} */ ($('bulk-include-api'));

function statsList(entries) {
  return h(
    'dl',
    { class: 'stats' },
    entries.map(([label, value]) => h('div', {}, h('dt', { text: label }), h('dd', { text: String(value ?? 0) }))),
  );
}

function renderBulkReport(report, dryRun) {
  const box = $('bulk-report');
  box.classList.toggle('ok', !dryRun);
  const ambiguous = Array.isArray(report.ambiguous_leads) ? report.ambiguous_leads : [];
  setChildren(
    box,
    h('h4', { text: dryRun ? `Dry run: ${plural(report.merged, 'lead')} would merge. Nothing changed yet.` : `Done: ${plural(report.merged, 'lead')} merged.` }),
    statsList([
      [dryRun ? 'Would merge' : 'Merged', report.merged],
      ['Ambiguous', report.ambiguous],
      ['Skipped', report.skipped],
      ['Conversations', report.conversations_moved],
      ['Events', report.events_moved],
    ]),
    ambiguous.length
      ? h(
          'div',
          {},
          h('p', { text: 'Ambiguous (email matches several users), left alone:' }),
          h('ul', {}, ambiguous.slice(0, 20).map((lead) => h('li', { text: typeof lead === 'string' ? lead : lead.email || lead.name || lead.id }))),
        )
      : null,
  );
}

async function bulk(dryRun) {
  bulkDry.disabled = true;
  bulkRun.disabled = true;
  try {
    const report = await api('POST', '/v1/merges/bulk', { json: { dry_run: dryRun, include_api_leads: includeApi.checked } });
    renderBulkReport(report, dryRun);
    bulkRun.disabled = !dryRun || !(Number(report.merged) > 0);
    bulkRun.textContent = dryRun && Number(report.merged) > 0 ? `Run merge (${plural(report.merged, 'lead')})` : 'Run merge';
    refreshNow();
  } catch (err) {
    showProblem(err);
  } finally {
    bulkDry.disabled = false;
  }
}

bulkDry.addEventListener('click', () => bulk(true));
bulkRun.addEventListener('click', () => bulk(false));
includeApi.addEventListener('change', () => {
  // The options changed: the last dry run no longer describes what would happen.
  bulkRun.disabled = true;
  bulkRun.textContent = 'Run merge';
  $('bulk-report').replaceChildren();
});

// ---------------------------------------------------------------- CSV import

$('import-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('import-file'));
  const file = input.files?.[0];
  const box = $('import-report');
  if (!file) {
    box.classList.remove('ok');
    box.replaceChildren(h('p', { class: 'form-error', text: 'Choose a CSV file first.' }));
    return;
  }
  const submit = /** @type {HTMLButtonElement} */ ($('import-submit'));
  submit.disabled = true;
  try {
    const report = await api('POST', '/v1/imports/users', { body: file, contentType: 'text/csv' });
    const failed = Array.isArray(report.failed) ? report.failed : [];
    box.classList.toggle('ok', failed.length === 0);
    setChildren(
      box,
      h('h4', { text: `Imported ${file.name}` }),
      statsList([
        ['Created', report.created],
        ['Updated', report.updated],
        ...(report.unchanged !== undefined ? [['Unchanged', report.unchanged]] : []),
        ['Failed', report.failed_count ?? failed.length],
      ]),
      failed.length
        ? h(
            'ul',
            { class: 'failed' },
            failed.slice(0, 50).map((f) => h('li', { text: `Line ${f.line}: ${f.reason}` })),
            failed.length > 50 ? h('li', { text: `…and ${failed.length - 50} more` }) : null,
          )
        : null,
    );
    input.value = '';
    refreshNow();
  } catch (err) {
    box.replaceChildren();
    showProblem(err);
  } finally {
    submit.disabled = false;
  }
});

// ---------------------------------------------------------------- polling

let timer = 0;
let running = false;
let again = false;
let connected = false;

async function tick() {
  if (!connected) return;
  if (running) {
    again = true;
    return;
  }
  running = true;
  clearTimeout(timer);
  try {
    // Contacts first: the audit log and the detail use the names it learns.
    await refreshContacts();
    await Promise.all([refreshMerges(), refreshSelected()]);
    setStatus('live', 'Live');
    dismissAlert('poll');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      running = false;
      showTokenPanel('The server refused this admin token. Paste the right one.');
      return;
    }
    setStatus('error', 'Connection problem, retrying');
    showProblem(err, 'poll');
  }
  running = false;
  if (again) {
    again = false;
    return tick();
  }
  timer = window.setTimeout(tick, POLL_MS);
}

function refreshNow() {
  tick();
}

// ---------------------------------------------------------------- token

function showTokenPanel(message = '') {
  connected = false;
  clearTimeout(timer);
  $('layout').hidden = true;
  $('token-panel').hidden = false;
  $('token-error').textContent = message;
  setStatus('idle', 'Not connected');
  $('token-input').focus();
}

function connect() {
  connected = true;
  $('token-panel').hidden = true;
  $('layout').hidden = false;
  setStatus('idle', 'Connecting…');
  lastJson.clear();
  tick();
}

$('token-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('token-input'));
  const candidate = input.value.trim();
  if (!candidate) return;
  token = candidate;
  try {
    await api('GET', '/v1/contacts?limit=1');
  } catch (err) {
    $('token-error').textContent = err instanceof ApiError && err.status === 401 ? 'That token was refused.' : err instanceof Error ? err.message : String(err);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  input.value = '';
  connect();
});

$('change-token').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  token = '';
  showTokenPanel();
});

/** The local demo hands its token to a console opened on this machine; elsewhere, paste it. */
async function localToken() {
  try {
    const res = await fetch('/demo/console-token', { cache: 'no-store' });
    if (!res.ok) return { token: null, why: (await problemOf(res)).detail ?? '' };
    const body = await res.json();
    return { token: typeof body.admin_token === 'string' ? body.admin_token : null, why: '' };
  } catch (err) {
    return { token: null, why: err instanceof Error ? err.message : String(err) };
  }
}

async function start() {
  token = sessionStorage.getItem(TOKEN_KEY) ?? '';
  if (!token) {
    const local = await localToken();
    if (!local.token) return showTokenPanel(local.why);
    token = local.token;
    sessionStorage.setItem(TOKEN_KEY, token);
  }
  connect();
}

start();
