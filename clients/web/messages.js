// messages.js: the card « Messages envoyés » of the coordinator's page
// (protocol 1.6.0, message.list): the confirmations sent to patients by SMS
// or e-mail, the summaries sent to médecins traitants and the referrals to
// GPs taking new patients, newest first, filtered by state; those given up
// stand out with the reason of their last failure.  Never an address nor a
// text: the server gives neither.
import { el, fill, label, errorText, busy, fmtShort, plural } from './app.js';

// The table's columns; each cell carries its column's name (data-label),
// shown in front of the value where the table becomes one card per message
// (phone).
const COLUMNS = ['N°', 'Type', 'Canal', 'État', 'Réservation', 'Créé le', 'Envoyé ou abandonné le', 'Essais', 'Erreur'];

const EMPTY = {
  '': 'Aucun message envoyé pour l’instant.',
  pending: 'Aucun message en attente d’envoi.',
  sent: 'Aucun message envoyé.',
  dead: 'Aucun message abandonné.',
};

function messageRow(m) {
  const cell = (i, attrs, ...content) => el('td', { role: 'cell', 'data-label': COLUMNS[i], ...attrs }, ...content);
  const dead = m.state === 'dead';
  return el('tr', { role: 'row', class: dead ? 'dead' : null, dataset: { message: m.message_id, state: m.state, kind: m.kind } },
    el('th', { role: 'rowheader', scope: 'row', 'data-label': COLUMNS[0] }, String(m.message_id)),
    cell(1, { class: 'kind' }, label('message_kind', m.kind)),
    cell(2, {}, label('message_channel', m.channel)),
    cell(3, {}, el('span', { class: `badge ${m.state}` }, label('message_state', m.state))),
    cell(4, { class: 'num' }, String(m.booking_id)),
    cell(5, { class: 'nowrap' }, fmtShort(m.created_at)),
    cell(6, { class: 'nowrap' }, m.done_at ? fmtShort(m.done_at) : '—'),
    cell(7, { class: 'num' }, String(m.attempts)),
    cell(8, { class: dead ? 'last-error alert-text' : 'last-error' }, m.last_error || '—'));
}

/**
 * Mounts the card: the list into BOX (#messages-box), read again when the
 * state filter STATESELECT changes or REFRESH is pressed.  CLIENT is the
 * page's.  Returns load(), to read the list again (after a reconnection).
 */
export function mountMessages(client, box, stateSelect, refresh) {
  let asked = 0; // the latest read: an earlier answer arriving late is dropped
  async function load() {
    const mine = ++asked;
    const state = stateSelect.value;
    try {
      const res = await client.call('message.list', state ? { state } : {});
      if (mine !== asked) return;
      const messages = res.messages;
      if (!messages.length) {
        fill(box, el('p', { class: 'muted', id: 'messages-empty' }, EMPTY[state]));
        return;
      }
      const dead = messages.filter((m) => m.state === 'dead').length;
      fill(box,
        el('p', { class: 'small muted', id: 'messages-count' },
          `${plural(messages.length, 'message')}, du plus récent au plus ancien`,
          dead && state !== 'dead' ? [', dont ', el('strong', { class: 'alert-text' }, plural(dead, 'abandonné'))] : null, '.'),
        el('div', { class: 'table-wrap' }, el('table', {
          id: 'messages-table', class: 'stack', role: 'table', 'aria-labelledby': 'messages-title',
        },
        el('thead', { role: 'rowgroup' }, el('tr', { role: 'row' },
          COLUMNS.map((c) => el('th', { scope: 'col', role: 'columnheader' }, c)))),
        el('tbody', { role: 'rowgroup' }, messages.map(messageRow)))));
    } catch (e) {
      if (mine === asked) fill(box, el('div', { class: 'message error' }, errorText(e)));
    }
  }
  stateSelect.addEventListener('change', load);
  refresh.addEventListener('click', () => busy(refresh, load));
  load();
  return load;
}
