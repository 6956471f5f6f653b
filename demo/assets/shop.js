// Kettle & Kiln: the host page's own code. It only talks to Parley through the public
// `Parley(...)` calls a customer would make, and to its own back end (/demo/login) to sign the
// logged-in identity. The identity secret never reaches the browser.

const APP_ID = document.querySelector('meta[name="parley-app-id"]')?.getAttribute('content') ?? '';
const API_BASE = location.origin;
const USER_KEY = 'kettle-and-kiln.user';
const BAG_KEY = 'kettle-and-kiln.bag';

/** The shop's sample customers. Anyone else can be typed into the login form. */
const SAMPLE_USERS = [
  { user_id: 'cust_ada', email: 'ada@example.com', name: 'Ada Lovelace', color: '#7a3b8f' },
  { user_id: 'cust_grace', email: 'grace@example.com', name: 'Grace Hopper', color: '#1f5f8b' },
  { user_id: 'cust_alan', email: 'alan@example.com', name: 'Alan Turing', color: '#8a4b12' },
];

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el;
};

/** The customer the shop considers logged in, with the hash its server signed, or null. */
function loadUser() {
  const raw = localStorage.getItem(USER_KEY);
  if (raw === null) return null;
  try {
    const user = JSON.parse(raw);
    if (user && typeof user.user_hash === 'string' && (user.user_id || user.email)) return user;
  } catch (err) {
    console.warn('Kettle & Kiln: ignoring a corrupt saved login', err);
  }
  localStorage.removeItem(USER_KEY);
  return null;
}

/** Only the identity fields that have a value: Parley refuses empty identities. */
function identityOf(user) {
  const identity = {};
  for (const key of ['user_id', 'email', 'name', 'user_hash']) {
    if (typeof user[key] === 'string' && user[key] !== '') identity[key] = user[key];
  }
  return identity;
}

function bootSettings(user) {
  return { app_id: APP_ID, api_base: API_BASE, color: '#2f5d50', ...(user ? identityOf(user) : {}) };
}

// Boot at once: the snippet's stub queues the call until the bundle has loaded.
window.Parley('boot', bootSettings(loadUser()));

// ---------------------------------------------------------------- account area

function renderAccount() {
  const user = loadUser();
  const who = $('who');
  who.replaceChildren();
  if (user) {
    who.append('Hi, ');
    const strong = document.createElement('strong');
    strong.textContent = user.name || user.email || user.user_id;
    who.append(strong);
  }
  who.hidden = !user;
  $('login-open').hidden = Boolean(user);
  $('logout').hidden = !user;
}

async function logIn(fields) {
  const identity = {};
  for (const key of ['user_id', 'email', 'name']) {
    const value = (fields[key] ?? '').trim();
    if (value !== '') identity[key] = value;
  }
  if (!identity.user_id && !identity.email) throw new Error('Enter a user ID or an email.');
  const res = await fetch('/demo/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(identity),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.detail || body.title || `Login failed (${res.status}).`);
  const user = { ...identity, user_hash: body.user_hash };
  localStorage.setItem(USER_KEY, JSON.stringify(user));
  // The login ping: carries the visitor cookie, so Parley merges this visitor into the user.
  window.Parley('update', identityOf(user));
  renderAccount();
  toast(`Logged in as ${user.name || user.email || user.user_id}.`);
}

function logOut() {
  localStorage.removeItem(USER_KEY);
  // Forget the visitor (rule R15), then start over as a brand-new anonymous visitor.
  window.Parley('shutdown');
  window.Parley('boot', bootSettings(null));
  renderAccount();
  toast('Logged out. The chat starts fresh for the next person.');
}

// ---------------------------------------------------------------- login dialog

const dialog = /** @type {HTMLDialogElement} */ ($('login-dialog'));
const form = /** @type {HTMLFormElement} */ ($('login-form'));

function renderSamples() {
  const list = $('sample-list');
  list.replaceChildren(
    ...SAMPLE_USERS.map((user) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'sample';
      const avatar = document.createElement('span');
      avatar.className = 'avatar';
      avatar.style.background = user.color;
      avatar.textContent = user.name.split(' ').map((part) => part[0]).join('');
      avatar.setAttribute('aria-hidden', 'true');
      const text = document.createElement('span');
      text.className = 'sample-text';
      const name = document.createElement('span');
      name.textContent = `Log in as ${user.name}`;
      const detail = document.createElement('small');
      detail.textContent = `${user.email} · ${user.user_id}`;
      text.append(name, detail);
      button.append(avatar, text);
      button.addEventListener('click', () => submitLogin(user));
      return button;
    }),
  );
}

async function submitLogin(fields) {
  const error = $('login-error');
  error.textContent = '';
  const buttons = form.querySelectorAll('button');
  buttons.forEach((b) => (b.disabled = true));
  try {
    await logIn(fields);
    dialog.close();
    form.reset();
  } catch (err) {
    error.textContent = err instanceof Error ? err.message : String(err);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const data = new FormData(form);
  submitLogin({ user_id: String(data.get('user_id') ?? ''), email: String(data.get('email') ?? ''), name: String(data.get('name') ?? '') });
});
$('login-open').addEventListener('click', () => {
  $('login-error').textContent = '';
  dialog.showModal();
});
$('login-close').addEventListener('click', () => dialog.close());
$('login-cancel').addEventListener('click', () => dialog.close());
$('logout').addEventListener('click', logOut);

// ---------------------------------------------------------------- bag

let toastTimer = 0;
function toast(text) {
  const el = $('toast');
  el.textContent = text;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => el.classList.remove('show'), 2600);
}

function renderBag() {
  $('bag-count').textContent = String(Number(localStorage.getItem(BAG_KEY) ?? '0') || 0);
}

for (const button of document.querySelectorAll('button.add')) {
  button.addEventListener('click', () => {
    const product = button.getAttribute('data-product') ?? '';
    const price = Number(button.getAttribute('data-price'));
    localStorage.setItem(BAG_KEY, String((Number(localStorage.getItem(BAG_KEY)) || 0) + 1));
    renderBag();
    // A custom event: the operator console shows its summary (count, first and last time).
    window.Parley('trackEvent', 'added-to-bag', { product, price });
    toast(`${product} is in your bag.`);
  });
}

renderSamples();
renderAccount();
renderBag();
