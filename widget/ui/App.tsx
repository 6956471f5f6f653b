import { useEffect, useRef, useState } from 'preact/hooks';
import type { Actions } from '../actions.ts';
import { threadKey } from '../outbox.ts';
import type { State, Store } from '../store.ts';
import { Text } from './text.tsx';

type P = { s: State; actions: Actions };

/** The current state, re-rendering on every change. */
function useStore(store: Store): State {
  const [s, set] = useState(store.get());
  useEffect(() => {
    set(store.get());
    return store.subscribe(set);
  }, [store]);
  return s;
}

function Time({ iso }: { iso: string }) {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return null;
  const t = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const today = d.toDateString() === new Date().toDateString();
  return <time dateTime={iso}>{today ? t : `${d.toLocaleDateString()} ${t}`}</time>;
}

/** The launcher, the live region and, when open, the panel. */
export function App({ store, actions }: { store: Store; actions: Actions }) {
  const s = useStore(store);
  const launcher = useRef<HTMLButtonElement>(null);
  const panel = useRef<HTMLDivElement>(null);
  const was = useRef(s.open);
  useEffect(() => {
    const p = panel.current;
    if (s.open) (p?.querySelector('textarea') ?? p?.querySelector<HTMLElement>('.start'))?.focus();
    else if (was.current) launcher.current?.focus();
    was.current = s.open;
  }, [s.open, s.thread]);

  return (
    <div class="w" style={s.color ? { '--c': s.color } : undefined}>
      <div class="sr" aria-live="polite">
        {s.announce}
      </div>
      {s.open && (
        <div
          class="p"
          id="parley-panel"
          role="dialog"
          aria-label="Chat"
          ref={panel}
          onKeyDown={(e) => {
            if (e.key === 'Escape') {
              e.stopPropagation();
              actions.hide();
            }
          }}
        >
          <div class="h">
            {s.thread && (
              <button type="button" aria-label="Back to conversations" onClick={actions.list}>
                ‹
              </button>
            )}
            <h2>{s.thread ? 'Chat' : 'Conversations'}</h2>
            <button type="button" aria-label="Close" onClick={actions.hide}>
              ✕
            </button>
          </div>
          {s.banner && (
            <div class="x" role="alert">
              <p>{s.banner}</p>
              <button type="button" aria-label="Dismiss" onClick={actions.dismiss}>
                ✕
              </button>
            </div>
          )}
          {s.thread ? <Thread s={s} actions={actions} /> : <List s={s} actions={actions} />}
        </div>
      )}
      <button
        type="button"
        class="l"
        ref={launcher}
        aria-label={s.open ? 'Close chat' : 'Open chat' + (s.unread ? `, ${s.unread} unread` : '')}
        aria-expanded={s.open}
        aria-controls="parley-panel"
        onClick={actions.toggle}
      >
        <svg width="26" height="26" viewBox="0 0 24 24" aria-hidden="true">
          <path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z" />
        </svg>
        {s.unread > 0 && (
          <span class="b">
            {s.unread}
            <span class="sr"> unread</span>
          </span>
        )}
      </button>
    </div>
  );
}

function List({ s, actions }: P) {
  const pending = s.outbox.filter((i) => !i.conversation_id && !i.start_id);
  return (
    <>
      <ul class="m" aria-label="Conversations">
        {pending.map((i) => (
          <li key={i.client_id}>
            <button type="button" class="li" onClick={() => void actions.open(i.client_id)}>
              {i.body}
              <br />
              <small>{i.status === 'sending' ? 'Sending…' : 'Not sent'}</small>
            </button>
          </li>
        ))}
        {s.conversations.map((c) => (
          <li key={c.id}>
            <button type="button" class="li" onClick={() => void actions.open(c.id)}>
              {c.last_message?.body ?? 'Conversation'}
              {c.unread_count > 0 && <span class="u">{c.unread_count} unread</span>}
              <br />
              <small>
                <Time iso={c.updated_at} />
              </small>
            </button>
          </li>
        ))}
        {!pending.length && !s.conversations.length && <li class="s">No conversations yet.</li>}
      </ul>
      <div class="f">
        <button type="button" class="pri start" onClick={actions.compose}>
          New conversation
        </button>
      </div>
    </>
  );
}

function Bubble({ agent, body, iso, children }: { agent?: boolean; body: string; iso: string; children?: unknown }) {
  return (
    <li class={agent ? 'g a' : 'g v'}>
      <span class="sr">{agent ? 'Agent: ' : 'You: '}</span>
      <Text text={body} />
      <br />
      <Time iso={iso} />
      {children as never}
    </li>
  );
}

function Thread({ s, actions }: P) {
  const key = s.thread ?? 'new';
  const msgs = s.messages[key] ?? [];
  const echoed = new Set(msgs.map((m) => m.client_id));
  const mine = s.outbox.filter((i) => threadKey(i) === key && !echoed.has(i.client_id));
  const list = useRef<HTMLOListElement>(null);
  useEffect(() => {
    const l = list.current;
    if (l) l.scrollTop = l.scrollHeight;
  }, [msgs.length, mine.length]);
  const c = s.contact;
  return (
    <>
      <ol class="m" aria-label="Messages" ref={list}>
        {!msgs.length && !mine.length && <li class="s">Ask us anything. We will reply here.</li>}
        {msgs.map((m) => (
          <Bubble key={m.id} agent={m.author.type === 'agent'} body={m.body} iso={m.created_at} />
        ))}
        {mine.map((i) => (
          <Bubble key={i.client_id} body={i.body} iso={i.created_at}>
            {i.status === 'sending' ? (
              <span class="s"> · Sending…</span>
            ) : (
              <span class="s">
                {' · Not sent'}
                {i.refused && `: ${i.error}`}
                {' – '}
                <button type="button" onClick={() => void actions.retry(i.client_id)}>
                  Retry
                </button>
                {i.refused && (
                  <button type="button" onClick={() => void actions.discard(i.client_id)}>
                    Discard
                  </button>
                )}
              </span>
            )}
          </Bubble>
        ))}
      </ol>
      {c?.role === 'lead' && (c.email ? <p class="n">We will notify you at {c.email}.</p> : <LeadPrompt actions={actions} />)}
      <Composer draft={s.draft} actions={actions} />
    </>
  );
}

function LeadPrompt({ actions }: { actions: Actions }) {
  const [email, setEmail] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="n"
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(await actions.leadEmail(email));
        setBusy(false);
      }}
    >
      <label for="parley-email">Get notified by email</label>
      <div class="f">
        <input
          id="parley-email"
          type="email"
          autocomplete="email"
          value={email}
          aria-invalid={!!error}
          aria-describedby={error ? 'parley-email-error' : undefined}
          onInput={(e) => setEmail(e.currentTarget.value)}
        />
        <button type="submit" class="pri" disabled={busy}>
          Notify me
        </button>
      </div>
      {error && (
        <p id="parley-email-error" class="e" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function Composer({ draft, actions }: { draft: string; actions: Actions }) {
  const box = useRef<HTMLTextAreaElement>(null);
  // Reads the element, not the last render: Enter can come before Preact re-renders the input.
  const submit = (e?: Event) => {
    e?.preventDefault();
    void actions.send(box.current?.value ?? draft);
  };
  return (
    <form class="f" onSubmit={submit}>
      <textarea
        ref={box}
        aria-label="Message"
        placeholder="Write a message…"
        rows={2}
        value={draft}
        onInput={(e) => actions.setDraft(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) submit(e);
        }}
      />
      <button type="submit" class="pri">
        Send
      </button>
    </form>
  );
}
