import { render } from 'preact';
import type { Actions } from '../actions.ts';
import type { Store } from '../store.ts';
import { App } from './App.tsx';
import { css } from './styles.ts';

/**
 * Renders the widget into an open shadow root on a host element at the end of the page, so host
 * CSS cannot reach it and its CSS cannot leak. Returns the function that removes it.
 */
export function mount(doc: Document, store: Store, actions: Actions): () => void {
  const host = doc.createElement('div');
  host.setAttribute('data-parley', '');
  const root = host.attachShadow({ mode: 'open' });
  const style = doc.createElement('style');
  style.textContent = css;
  const el = doc.createElement('div');
  root.append(style, el);
  (doc.body ?? doc.documentElement).appendChild(host);
  render(<App store={store} actions={actions} />, el);
  return () => {
    render(null, el);
    host.remove();
  };
}
