// index.js: sign-in with a pasted token (kept in sessionStorage), then the
// menu of the pages of the token's role, from the WebSocket auth answer.
import {
  $, el, fill, Client, ApiError, errorText, label, PAGES, TOKEN_KEY, SESSION_KEY, signOut, showError,
} from './app.js';

const form = $('#signin-form');
const input = $('#token');
const errorBox = $('#signin-error');

function showMenu(session) {
  $('#signin').hidden = true;
  const menu = $('#menu');
  menu.hidden = false;
  fill($('#menu-who'),
    el('dt', {}, 'Rôle'), el('dd', {}, label('role', session.role)),
    session.organisation_name ? [el('dt', {}, 'Organisation'), el('dd', {}, session.organisation_name)] : null,
    session.rpps ? [el('dt', {}, 'RPPS'), el('dd', {}, session.rpps)] : null,
    el('dt', {}, 'Territoire'), el('dd', {}, session.territory_id));
  const pages = PAGES[session.role] || [];
  fill($('#menu-pages'), pages.map(([href, text]) =>
    el('li', {}, el('a', { href, class: 'button primary' }, text))));
  const next = new URLSearchParams(location.search).get('next');
  if (next && pages.some(([href]) => href === next)) {
    location.replace(next);
    return;
  }
  const first = $('#menu-pages a');
  if (first) first.focus();
}

// Opens a connection only to check the token and learn the role.
async function check(token) {
  const client = new Client(token);
  const opened = client.open();
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new ApiError('timeout')), 10000));
  try {
    return await Promise.race([opened, timeout]);
  } finally {
    client.close();
  }
}

async function signIn(token) {
  const button = $('#signin-button');
  button.disabled = true;
  showError(errorBox, null);
  try {
    const session = await check(token);
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    showMenu(session);
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    input.setAttribute('aria-invalid', 'true');
    showError(errorBox, e instanceof ApiError && e.code === 'unauthenticated'
      ? 'Ce jeton n’est pas reconnu. Vérifiez qu’il a été collé en entier.'
      : errorText(e));
    input.focus();
  } finally {
    button.disabled = false;
  }
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = input.value.trim();
  if (!/^snp_[A-Za-z0-9_-]{43}$/.test(token)) {
    input.setAttribute('aria-invalid', 'true');
    showError(errorBox, 'Le jeton doit commencer par « snp_ » et compter 47 caractères en tout.');
    input.focus();
    return;
  }
  input.removeAttribute('aria-invalid');
  signIn(token);
});

$('#signout-button').addEventListener('click', signOut);

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  signIn(saved);
} else {
  input.focus();
}
