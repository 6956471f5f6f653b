import { fireEvent, render, waitFor } from '@testing-library/preact';
import { describe, expect, it, vi } from 'vitest';
import { linkParts, Text } from '../../widget/ui/text.tsx';
import { harness, settings, shadowContent, type Harness } from './setup.ts';

const HOSTILE = [
  '<img src=x onerror=alert(1)>',
  '<script>alert(1)</script>',
  'javascript:alert(1)',
  '<a href="javascript:alert(1)">click</a>',
  'data:text/html,<b>x</b>',
];

describe('message text', () => {
  it.each(HOSTILE)('renders %s as text, never as markup or a link', (body) => {
    const { container } = render(<Text text={body} />);
    expect(container.textContent).toBe(body);
    expect(container.querySelector('img, script, a, b')).toBeNull();
  });

  it('makes http(s) URLs clickable links that open safely, and nothing else', () => {
    const { container } = render(
      <Text text="See https://example.com/a?b=1, or http://x.test/path. Not ftp://nope.test or javascript:alert(1)" />,
    );
    const links = [...container.querySelectorAll('a')];
    expect(links.map((a) => a.getAttribute('href'))).toEqual(['https://example.com/a?b=1', 'http://x.test/path']);
    for (const a of links) {
      expect(a.getAttribute('rel')).toBe('noopener noreferrer');
      expect(a.getAttribute('target')).toBe('_blank');
    }
    expect(container.textContent).toContain('ftp://nope.test');
  });

  it('keeps a URL with markup in it as a link whose text is the literal text', () => {
    const parts = linkParts('go https://e.test/<img> now');
    expect(parts).toEqual([{ text: 'go ' }, { text: 'https://e.test/', href: 'https://e.test/' }, { text: '<img> now' }]);
  });
});

async function open(h: Harness) {
  const launcher = await h.ui().findByRole('button', { name: 'Open chat' });
  fireEvent.click(launcher);
  return launcher;
}

describe('widget UI', () => {
  it('lives in an open shadow root that resets host styles', async () => {
    document.head.insertAdjacentHTML('beforeend', '<style>button{display:none!important}</style>');
    const h = harness();
    await h.w.boot(settings({ color: 'rgb(1, 2, 3)' }));
    const host = document.querySelector('[data-parley]')!;
    expect(host.shadowRoot?.mode).toBe('open');
    expect(host.shadowRoot!.querySelector('style')!.textContent).toContain(':host{all:initial}');
    expect(host.shadowRoot!.querySelector('style')!.textContent).toMatch(/@media \(max-width:480px\)\{\.p\{position:fixed;inset:0;width:100%;height:100%.*\.l\[aria-expanded=true\]\{display:none\}/);
    await waitFor(() => expect((shadowContent().firstElementChild as HTMLElement).style.getPropertyValue('--c')).toBe('rgb(1, 2, 3)'));
  });

  it('hostile bodies from the server render as text inside the widget', async () => {
    const h = harness();
    await h.w.boot(settings());
    h.w.show();
    const box = await h.ui().findByRole('textbox', { name: 'Message' });
    fireEvent.input(box, { target: { value: 'hi' } });
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(h.fake.conversations.size).toBe(1));
    const convId = [...h.fake.conversations.keys()][0]!;
    await h.ui().findByText('hi');
    for (const body of HOSTILE) h.streams.current().emit('message', h.fake.reply(convId, body));
    await h.ui().findByText(HOSTILE[0]!);
    const log = h.ui().getByRole('list', { name: 'Messages' });
    expect(log.querySelector('img, script')).toBeNull();
    expect(log.querySelector('a')).toBeNull();
  });

  it('launcher is named "Open chat"/"Close chat"; focus moves into the panel and back; Escape closes', async () => {
    const h = harness();
    const shown = vi.fn();
    const hidden = vi.fn();
    h.w.onShow(shown);
    h.w.onHide(hidden);
    await h.w.boot(settings());
    const launcher = await open(h);
    const box = await h.ui().findByRole('textbox', { name: 'Message' });
    await waitFor(() => expect(box.getRootNode() instanceof ShadowRoot && (box.getRootNode() as ShadowRoot).activeElement).toBe(box));
    expect(h.ui().getByRole('dialog', { name: 'Chat' })).toBeTruthy();
    expect(launcher.getAttribute('aria-label')).toBe('Close chat');
    expect(launcher.getAttribute('aria-expanded')).toBe('true');
    expect(shown).toHaveBeenCalledTimes(1);
    fireEvent.keyDown(box, { key: 'Escape' });
    await waitFor(() => expect(h.ui().queryByRole('dialog')).toBeNull());
    expect(hidden).toHaveBeenCalledTimes(1);
    expect(h.ui().getByRole('button', { name: 'Open chat' })).toBe(launcher);
    await waitFor(() => expect((launcher.getRootNode() as ShadowRoot).activeElement).toBe(launcher));
  });

  it('every control has an accessible name and new messages are announced politely', async () => {
    const h = harness();
    await h.w.boot(settings());
    await open(h);
    const ui = h.ui();
    await ui.findByRole('button', { name: 'Close chat' });
    for (const name of ['Close', 'Send', 'Back to conversations']) expect(ui.getByRole('button', { name })).toBeTruthy();
    expect(ui.getByRole('textbox', { name: 'Message' })).toBeTruthy();
    fireEvent.click(ui.getByRole('button', { name: 'Back to conversations' }));
    expect(await ui.findByRole('button', { name: 'New conversation' })).toBeTruthy();
    for (const b of ui.getAllByRole('button')) expect(b.getAttribute('aria-label') || b.textContent!.trim()).not.toBe('');
  });

  it('announces an agent reply in a polite live region and counts it as unread while closed', async () => {
    const h = harness();
    const counts: number[] = [];
    h.w.onUnreadCountChange((n) => counts.push(n));
    await h.w.boot(settings());
    await open(h);
    const box = await h.ui().findByRole('textbox', { name: 'Message' });
    fireEvent.input(box, { target: { value: 'hello' } });
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(h.fake.conversations.size).toBe(1));
    h.w.hide();
    const convId = [...h.fake.conversations.keys()][0]!;
    h.streams.current().emit('message', h.fake.reply(convId, 'We are here'));
    const live = shadowContent().querySelector('[aria-live="polite"]')!;
    await waitFor(() => expect(live.textContent).toBe('New message: We are here'));
    await waitFor(() => expect(counts.at(-1)).toBe(1));
    const launcher = h.ui().getByRole('button', { name: 'Open chat, 1 unread' });
    expect(launcher.textContent).toContain('1 unread');
    // Opening the thread marks it read.
    fireEvent.click(launcher);
    await waitFor(() => expect(h.fake.callsTo('POST', '/read').length).toBeGreaterThan(0));
    await waitFor(() => expect(counts.at(-1)).toBe(0));
  });

  it('the launcher\'s accessible name includes the unread count, when there is one', async () => {
    const h = harness();
    await h.w.boot(settings());
    const ui = h.ui();
    const launcher = await ui.findByRole('button', { name: 'Open chat' });
    await waitFor(() => expect(h.fake.callsTo('GET', '/conversations').length).toBeGreaterThan(0));
    await new Promise((r) => setTimeout(r, 30)); // let the boot-time list settle first
    h.streams.current().emit('unread', { unread_count: 2 });
    await waitFor(() => expect(ui.getByRole('button', { name: 'Open chat, 2 unread' })).toBe(launcher));
    expect(ui.queryByRole('button', { name: 'Open chat' })).toBeNull();
    h.streams.current().emit('unread', { unread_count: 0 });
    await waitFor(() => expect(ui.getByRole('button', { name: 'Open chat' })).toBe(launcher));
    h.w.show();
    await waitFor(() => expect(ui.getByRole('button', { name: 'Close chat' })).toBe(launcher));
  });

  it('Enter sends; Shift+Enter does not', async () => {
    const h = harness();
    await h.w.boot(settings());
    await open(h);
    const box = (await h.ui().findByRole('textbox', { name: 'Message' })) as HTMLTextAreaElement;
    fireEvent.input(box, { target: { value: 'line one\nline two' } });
    fireEvent.keyDown(box, { key: 'Enter', shiftKey: true });
    await new Promise((r) => setTimeout(r, 30));
    expect(h.fake.callsTo('POST', '/conversations')).toHaveLength(0);
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(h.fake.callsTo('POST', '/conversations')).toHaveLength(1));
    expect(h.fake.callsTo('POST', '/conversations')[0]!.body).toMatchObject({ body: 'line one\nline two' });
    await waitFor(() => expect(box.value).toBe(''));
  });

  it('agent and visitor messages are told apart, with timestamps', async () => {
    const h = harness();
    await h.w.boot(settings());
    await open(h);
    const box = await h.ui().findByRole('textbox', { name: 'Message' });
    fireEvent.input(box, { target: { value: 'mine' } });
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(h.fake.conversations.size).toBe(1));
    const convId = [...h.fake.conversations.keys()][0]!;
    await h.ui().findByText('mine');
    h.streams.current().emit('message', h.fake.reply(convId, 'theirs'));
    const theirs = (await h.ui().findByText('theirs')).closest('li')!;
    const mine = h.ui().getByText('mine').closest('li')!;
    expect(theirs.className).not.toBe(mine.className);
    expect(theirs.textContent).toContain('Agent:');
    expect(mine.textContent).toContain('You:');
    expect(theirs.querySelector('time')!.getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('showNewMessage opens a new conversation with the text prefilled', async () => {
    const h = harness();
    await h.w.boot(settings());
    h.w.showNewMessage('About my order');
    const box = (await h.ui().findByRole('textbox', { name: 'Message' })) as HTMLTextAreaElement;
    expect(box.value).toBe('About my order');
  });
});
