// coordinator.js: the coordinator's page (also admin): the CSNP shifts of the
// next 14 days and their practitioner on duty (shift.list, shift.assign), the
// month's declared indicators (indicators.get), their files for a month, a quarter or a
// contract year (indicators.export: CSV, printable HTML, participation
// statement), the territory's access tokens (token.list,
// token.create with its secret shown once, token.revoke after an inline
// confirmation), the messages sent (message.list, messages.js), the
// territory (territory.get) and its settings (territory.settings.update, only
// the members changed; since protocol 1.6.0 the summary to the médecin
// traitant and the GPs taking new patients, chosen among the territory's
// practitioners).
//
// indicators.get may answer not_found while the server does not compute
// indicators yet: the page then says so and shows no figure.
import {
  $, $$, el, fill, startPage, label, LABELS, errorText, showError, busy, zonedParts, isRpps, PAGES, saveFile,
  askInline, addDays, plural, fmtDay, shiftTitle, shiftSlots, onDuty,
} from './app.js';
import { mountMessages } from './messages.js';
import { SETTING_BOUNDS } from './bounds.js';

// French names of the indicators known to this page; others show their name.
const INDICATOR_LABELS = {
  slots_offered: 'Créneaux mis à disposition',
  slots_published: 'Créneaux publiés',
  bookings: 'Rendez-vous pris',
  requests: 'Demandes reçues',
  requests_served: 'Demandes servies',
  requests_unserved: 'Demandes non servies',
  no_show_rate: 'Taux de patients absents',
  no_shows: 'Patients absents',
};

// The settings' fields: their words here, their kind, bounds and default
// from the declaration (bounds.js, generated from protocol/snp.v1.json).
const withBounds = (key, fields) => ({ key, ...fields, ...SETTING_BOUNDS[key] });
const SETTINGS = [
  withBounds('hold_seconds', { text: 'Durée de réservation d’un créneau proposé', unit: 's' }),
  withBounds('alternatives', { text: 'Autres créneaux listés avec une proposition' }),
  withBounds('outcome_delay_hours', { text: 'Délai pour déclarer l’issue d’un rendez-vous', unit: 'h' }),
  withBounds('identity_retention_days', { text: 'Conservation de l’identité des patients', unit: 'jours' }),
  withBounds('indicator_mask_threshold', { text: 'Seuil de masquage des indicateurs (patients)' }),
  withBounds('indicator_consolidation_days', { text: 'Délai de consolidation des indicateurs', unit: 'jours' }),
  withBounds('contract_start_month', { text: 'Premier mois de l’année du contrat' }),
  withBounds('audit_retention_months', { text: 'Conservation du journal d’audit', unit: 'mois' }),
];
// The members of the setting weights, by name in it (weights.<name>).
const WEIGHTS = [
  { name: 'start_per_hour', text: 'Coût par heure d’attente' },
  { name: 'distance_per_km', text: 'Coût par kilomètre' },
  { name: 'own_mt_bonus', text: 'Bonus du médecin traitant' },
  { name: 'fairness', text: 'Équité entre médecins' },
  { name: 'scarcity', text: 'Préserver les créneaux rares' },
].map((w) => withBounds(`weights.${w.name}`, w));
// An integer setting's input steps by one; a number's takes any value.
const stepOf = (f) => (f.kind === 'integer' ? 1 : 'any');

// Roles whose tokens act for an organisation (token.create's organisation_id).
const REQUESTER_ROLES = ['pharmacy', 'emergency', 'sas', 'professional', 'desk'];
// The roles a token may grant, in the order of the form's select.
const TOKEN_ROLES = ['gp', ...REQUESTER_ROLES, 'coordinator', 'admin'];

const ctx = await startPage(['coordinator', 'admin']);
if (ctx) main(ctx);

function main({ client, session, territory }) {
  const tz = (territory && territory.time_zone) || 'Europe/Paris';
  fill($('#nav'), (PAGES[session.role] || []).filter(([href]) => href !== 'coordinator.html')
    .map(([href, text]) => el('a', { href }, text)));

  // --- Indicators -------------------------------------------------------------------

  // The current month and the eleven before it, in French.
  const month = $('#month');
  const MONTHS = ['janvier', 'février', 'mars', 'avril', 'mai', 'juin', 'juillet', 'août',
    'septembre', 'octobre', 'novembre', 'décembre'];
  const [y0, m0] = zonedParts(client.now(), tz).date.split('-').map(Number);
  for (let i = 0; i < 12; i++) {
    const m = ((m0 - 1 - i) % 12 + 12) % 12;
    const y = y0 + Math.floor((m0 - 1 - i) / 12);
    const value = `${y}-${String(m + 1).padStart(2, '0')}`;
    month.append(el('option', { value }, `${MONTHS[m]} ${y}${i === 0 ? ' (en cours)' : ''}`));
  }

  // --- Exports (indicators.export, protocol 1.3.0) ---------------------------------
  // The twelve months above, the last four quarters and the last two
  // contract years (from the territory's contract_start_month).
  const exportPeriod = $('#export-period');
  const startMonth = (territory && territory.settings && territory.settings.contract_start_month)
    || SETTING_BOUNDS.contract_start_month.default;
  const periods = [];
  for (const o of month.options) periods.push(['month', o.value, `Mois : ${o.textContent}`]);
  for (let i = 0; i < 4; i++) {
    const q0 = Math.floor((m0 - 1) / 3) - i;
    const q = ((q0 % 4) + 4) % 4;
    const y = y0 + Math.floor(q0 / 4);
    periods.push(['quarter', `${y}-Q${q + 1}`, `Trimestre : T${q + 1} ${y}`]);
  }
  const yearNow = m0 >= startMonth ? y0 : y0 - 1;
  for (const y of [yearNow, yearNow - 1]) {
    periods.push(['year', String(y), `Année de contrat ${y} (à partir de ${MONTHS[startMonth - 1]} ${y})`]);
  }
  fill(exportPeriod, periods.map(([kind, value, text]) => el('option', { value: `${kind}:${value}` }, text)));
  let exportFormat = 'csv';
  for (const b of $('#export-form').querySelectorAll('button')) {
    b.addEventListener('click', () => { exportFormat = b.dataset.format; });
  }
  $('#export-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const button = ev.submitter || $(`#export-${exportFormat}`);
    const [kind, period] = exportPeriod.value.split(':');
    showError($('#export-error'), null);
    busy(button, async () => {
      try {
        const res = await client.call('indicators.export',
          { period_kind: kind, period, format: button.dataset.format });
        saveFile(res);
      } catch (e) {
        showError($('#export-error'), errorText(e));
      }
    });
  });

  const fmtValue = (ind) => {
    if (ind.unit === 'ratio') return `${(ind.value * 100).toLocaleString('fr-FR', { maximumFractionDigits: 1 })} %`;
    return `${ind.value.toLocaleString('fr-FR')}${ind.unit ? ` ${label('indicator_unit', ind.unit)}` : ''}`;
  };

  // Masked cells (protocol 1.2.0) are shown as masked, never dropped: each
  // after the last figure of its indicator (the part of its name before
  // "__"), or at the end.
  const withMasked = (indicators, masked) => {
    const rows = [...indicators];
    for (const m of masked) {
      const code = m.name.split('__')[0];
      let at = -1;
      rows.forEach((r, i) => { if (r.name === code || r.name.startsWith(`${code}__`)) at = i; });
      rows.splice(at < 0 ? rows.length : at + 1, 0, m);
    }
    return rows;
  };
  const maskedCell = (m) => el('td', {
    class: 'num masked',
    title: m.reason === 'small_count'
      ? `Secret statistique : moins de ${m.below || 'quelques'} patients, la valeur n’est pas montrée.`
      : 'Secret statistique : masqué pour qu’une petite valeur ne se déduise pas du total.',
  }, m.reason === 'small_count' && m.below ? `< ${m.below}` : 'masqué', el('span', { class: 'hint' }, 'secret stat.'));

  async function loadIndicators() {
    const box = $('#indicators-box');
    fill(box, el('p', { class: 'muted' }, 'Chargement…'));
    try {
      const res = await client.call('indicators.get', { month: month.value });
      const rows = withMasked(res.indicators, res.masked || []);
      if (!rows.length) {
        fill(box, el('p', { class: 'muted' }, 'Aucun indicateur pour ce mois.'));
        return;
      }
      const counts = res.indicators.filter((i) => !i.unit);
      const max = Math.max(1, ...counts.map((i) => i.value));
      // One unit of the drawing is about one screen pixel: names above the bars.
      const W = Math.round(Math.max(300, Math.min(720, box.clientWidth || 600)));
      const rowH = 42;
      const barMax = W - 70;
      const chart = counts.length ? el('svg', {
        class: 'chart', viewBox: `0 0 ${W} ${counts.length * rowH + 4}`, role: 'img',
        'aria-label': 'Graphique des indicateurs en nombre (mêmes valeurs que le tableau)',
      }, counts.map((ind, i) => {
        const w = Math.max(2, (ind.value / max) * barMax);
        return el('g', {},
          el('text', { x: 0, y: i * rowH + 14 }, ind.label || INDICATOR_LABELS[ind.name] || ind.name),
          el('rect', { x: 0, y: i * rowH + 20, width: w.toFixed(1), height: 16 }),
          el('text', { x: (w + 6).toFixed(1), y: i * rowH + 33 }, ind.value.toLocaleString('fr-FR')));
      })) : null;
      fill(box,
        el('div', { class: 'table-wrap' }, el('table', { id: 'indicators-table' },
          el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Indicateur'), el('th', { scope: 'col', class: 'num' }, 'Valeur'),
            el('th', { scope: 'col', class: 'num' }, 'Définition'))),
          el('tbody', {}, rows.map((ind) => el('tr', ind.reason ? { class: 'masked' } : {},
            el('th', { scope: 'row' }, ind.label || INDICATOR_LABELS[ind.name] || ind.name, el('span', { class: 'hint' }, ind.name)),
            ind.reason ? maskedCell(ind) : el('td', { class: 'num' }, fmtValue(ind)),
            el('td', { class: 'num' }, `v${ind.definition_version}`)))))),
        chart);
    } catch (e) {
      if (e.code === 'not_found') {
        fill(box, el('div', { class: 'message warn', id: 'indicators-unavailable' },
          el('strong', {}, 'Indicateurs pas encore disponibles. '),
          'Cette version du serveur ne calcule pas encore les indicateurs du mois : aucun chiffre n’est affiché ',
          'plutôt qu’un chiffre inexact. Ils apparaîtront ici dès qu’elle les fournira.'));
      } else {
        fill(box, el('div', { class: 'message error' }, errorText(e)));
      }
    }
  }
  month.addEventListener('change', loadIndicators);

  // --- Access tokens -----------------------------------------------------------------

  const live = (text) => { $('#tokens-live').textContent = text; };

  /** "20/11/2026 09:00" in the territory's time zone, or '' without a date. */
  const fmtDate = (ts) => {
    const ms = Date.parse(ts || '');
    if (Number.isNaN(ms)) return '';
    const p = zonedParts(ms, tz);
    const [y, m, d] = p.date.split('-');
    return `${d}/${m}/${y} ${String(p.hour).padStart(2, '0')}:${String(p.minute).padStart(2, '0')}`;
  };
  /** Who holds token T: the GP's RPPS, the organisation, or nobody in particular. */
  const holder = (t) => {
    if (t.role === 'gp' && t.rpps) return `Dr ${t.rpps}`;
    if (t.organisation_id) return `${t.organisation_name || 'Organisation'}, n° ${t.organisation_id}`;
    return '—';
  };
  /** The token named for a confirmation: "n° 42 · Pharmacie · Pharmacie du Pont, n° 3 · « comptoir »". */
  const tokenName = (t) => [`n° ${t.token_id}`, label('role', t.role), holder(t) === '—' ? null : holder(t),
    t.label ? `« ${t.label} »` : null].filter(Boolean).join(' · ');

  // Cells carry their column's name (data-label), shown in front of the
  // value where the table is laid out as one card per token (phone).
  const COLUMNS = ['N°', 'Rôle', 'Titulaire', 'Libellé', 'Créé le', 'Expire le', 'État', 'Action'];
  const cell = (i, attrs, ...content) => el('td', { role: 'cell', 'data-label': COLUMNS[i], ...attrs }, ...content);

  function tokenRow(t) {
    const actions = cell(7, { class: 'actions' });
    const row = el('tr', { role: 'row', 'data-token': t.token_id, 'data-state': t.state, 'data-role': t.role },
      el('th', { role: 'rowheader', scope: 'row', 'data-label': COLUMNS[0], tabindex: -1 }, String(t.token_id)),
      cell(1, {}, label('role', t.role)),
      cell(2, { class: 'holder' }, holder(t)),
      cell(3, { class: 'token-label' }, t.label || '—',
        t.token_id === session.token_id ? el('span', { class: 'hint' }, ' (cette page)') : null),
      cell(4, { class: 'nowrap' }, fmtDate(t.created_at)),
      cell(5, { class: 'nowrap' }, t.expires_at ? fmtDate(t.expires_at) : 'jamais'),
      cell(6, { class: 'state' }, el('div', {},
        el('span', { class: `badge ${t.state}` }, label('token_state', t.state)),
        t.revoked_at ? el('span', { class: 'hint' }, `le ${fmtDate(t.revoked_at)}`) : null)),
      actions);
    if (t.state === 'active') showRevoke(actions, t);
    return row;
  }

  // Revocation in two steps without a dialog: « Révoquer » asks, naming the
  // token, then « Confirmer la révocation » or « Annuler » (also Escape).
  function showRevoke(actions, t, error) {
    const button = el('button', {
      type: 'button', class: 'danger small', 'data-revoke': t.token_id,
      'aria-label': `Révoquer le jeton ${tokenName(t)}`,
      onclick: () => askRevoke(actions, t),
    }, 'Révoquer');
    fill(actions, button, error ? el('div', { class: 'message error small', role: 'alert' }, error) : null);
    return button;
  }

  function askRevoke(actions, t) {
    askInline(actions, {
      label: `Révocation du jeton n° ${t.token_id}`,
      question: [`Révoquer le jeton ${tokenName(t)} ? Il sera refusé immédiatement.`,
        t.token_id === session.token_id
          ? el('strong', { class: 'own-token' }, ' C’est le jeton de cette page : vous serez déconnecté.') : null],
      confirm: 'Confirmer la révocation',
      key: ['revoke', t.token_id],
      onConfirm: (button) => revoke(actions, t, button),
      onCancel: () => showRevoke(actions, t).focus(),
    });
  }

  async function revoke(actions, t, button) {
    await busy(button, async () => {
      try {
        const done = await client.call('token.revoke', { token_id: t.token_id });
        // The row stays in view, revoked, until the list is shown again.
        const row = tokenRow(done);
        actions.closest('tr').replaceWith(row);
        live(`Jeton ${tokenName(done)} révoqué : il est refusé dès maintenant.`);
        row.querySelector('th').focus();
      } catch (e) {
        // The message is announced (role="alert") and stays next to the token.
        if (e.code === 'conflict' || e.code === 'not_found') {
          // Revoked (or gone) meanwhile, by someone else: nothing left to do here.
          const gone = el('div', { class: 'message error small', role: 'alert', tabindex: -1 },
            e.code === 'conflict' ? 'Ce jeton était déjà révoqué.' : 'Ce jeton n’existe plus dans le territoire.');
          fill(actions, gone, el('button', { type: 'button', class: 'small', onclick: loadTokens }, 'Actualiser la liste'));
          gone.focus();
          return;
        }
        const text = e.code === 'forbidden' && t.role === 'admin'
          ? 'Seul un administrateur du service peut révoquer un jeton « Administration du service ». '
            + 'Demandez-le à l’administrateur.'
          : errorText(e);
        showRevoke(actions, t, text).focus();
      }
    });
  }

  const tokenState = $('#tokens-state');
  const STATE_EMPTY = {
    active: 'Aucun jeton actif.', expired: 'Aucun jeton expiré.', revoked: 'Aucun jeton révoqué.', '': 'Aucun jeton.',
  };
  const STATE_COUNT = { active: 'actif', expired: 'expiré', revoked: 'révoqué', '': '' };

  async function loadTokens() {
    const box = $('#tokens-box');
    const state = tokenState.value;
    try {
      const res = await client.call('token.list', state ? { state } : {});
      if (!state) fillKnown(res.tokens);
      if (!res.tokens.length) {
        fill(box, el('p', { class: 'muted', id: 'tokens-empty' }, STATE_EMPTY[state]));
        return;
      }
      const n = res.tokens.length;
      const plural = n > 1 ? 's' : '';
      fill(box,
        el('p', { class: 'small muted', id: 'tokens-count' },
          `${n} jeton${plural}${STATE_COUNT[state] ? ` ${STATE_COUNT[state]}${plural}` : ''}, du plus récent au plus ancien.`),
        el('div', { class: 'table-wrap' }, el('table', {
          id: 'tokens-table', class: 'stack', role: 'table', 'aria-labelledby': 'tokens-list-title',
        },
        el('thead', { role: 'rowgroup' }, el('tr', { role: 'row' },
          COLUMNS.map((c) => el('th', { scope: 'col', role: 'columnheader' }, c)))),
        el('tbody', { role: 'rowgroup' }, res.tokens.map(tokenRow)))));
    } catch (e) {
      fill(box, el('div', { class: 'message error' }, errorText(e)));
    }
  }
  tokenState.addEventListener('change', loadTokens);

  // --- The creation form ---

  const roleSelect = $('#tk-role');
  fill(roleSelect, el('option', { value: '' }, 'Choisir un rôle…'),
    TOKEN_ROLES.filter((r) => r !== 'admin' || session.role === 'admin')
      .map((r) => el('option', { value: r }, label('role', r))));

  // Holders already known from the territory's tokens (any state), offered
  // as one-click choices: a pharmacy that lost its token is found again
  // without the output of snpctl import.
  let known = [];
  function fillKnown(all) {
    known = all;
    renderKnown();
  }
  async function loadKnown() {
    try {
      fillKnown((await client.call('token.list', {})).tokens);
    } catch { /* the choices are a convenience: the fields still work */ }
  }
  function renderKnown() {
    const role = roleSelect.value;
    const seen = new Map();
    for (const t of known) {
      if (t.role !== role) continue;
      if (role === 'gp' && t.rpps && !seen.has(t.rpps)) seen.set(t.rpps, `Dr ${t.rpps}${t.label ? ` (${t.label})` : ''}`);
      if (t.organisation_id && !seen.has(t.organisation_id)) {
        seen.set(t.organisation_id, `${t.organisation_name || 'Organisation'}, n° ${t.organisation_id}`);
      }
    }
    const target = role === 'gp' ? $('#tk-rpps') : $('#tk-org');
    const choices = [...seen].slice(0, 12).map(([value, text]) => el('button', {
      type: 'button', class: 'small', 'data-known': value,
      onclick: () => { target.value = String(value); clearFieldError(target); target.focus(); },
    }, text));
    const intro = (box) => el('span', { class: 'small muted', id: `${box}-intro` },
      role === 'gp' ? 'Médecins qui ont déjà eu un jeton :' : 'Déjà connues par leurs jetons :');
    fill($('#tk-rpps-known'), role === 'gp' && choices.length ? [intro('tk-rpps-known'), choices] : null);
    fill($('#tk-org-known'), REQUESTER_ROLES.includes(role) && choices.length ? [intro('tk-org-known'), choices] : null);
  }

  function showRoleFields() {
    const role = roleSelect.value;
    $('#tk-rpps-field').hidden = role !== 'gp';
    $('#tk-org-field').hidden = !REQUESTER_ROLES.includes(role);
    renderKnown();
  }
  roleSelect.addEventListener('change', () => {
    clearFieldError(roleSelect);
    showRoleFields();
  });

  const FIELD_INPUT = {
    role: '#tk-role', rpps: '#tk-rpps', organisation_id: '#tk-org', label: '#tk-label', expires_days: '#tk-days',
  };
  function clearFieldError(input) {
    input.removeAttribute('aria-invalid');
    const box = $(`#${input.id}-error`);
    if (box) showError(box, null);
  }
  /** Marks INPUT as wrong with TEXT next to it, and gives it the focus. */
  function fieldError(input, text) {
    input.setAttribute('aria-invalid', 'true');
    const box = $(`#${input.id}-error`);
    if (box) showError(box, text);
    input.focus();
  }
  for (const sel of Object.values(FIELD_INPUT)) $(sel).addEventListener('input', (ev) => clearFieldError(ev.target));

  function hideSecret() {
    const slot = $('#token-secret-slot');
    // The secret leaves the page: nothing keeps it once it is handed over.
    slot.replaceChildren();
  }

  function showSecret(res) {
    const t = res.token;
    const status = el('p', { class: 'small', id: 'token-copy-status', role: 'status', 'aria-live': 'polite' });
    const secret = el('code', { id: 'token-secret' }, res.secret);
    const copy = el('button', {
      type: 'button', class: 'primary', id: 'token-copy',
      onclick: () => copySecret(res.secret, secret, status),
    }, 'Copier');
    fill($('#token-secret-slot'), el('div', {
      class: 'secret-box', id: 'token-secret-box', role: 'region', 'aria-labelledby': 'token-secret-title',
    },
    el('h4', { id: 'token-secret-title' }, `Secret du jeton ${tokenName(t)}`),
    el('p', {}, el('strong', {}, 'Ce secret ne sera plus jamais affiché : '),
      'remettez-le maintenant à son titulaire, qui le colle sur la page de connexion. ',
      'Transmettez-le en main propre ou par un canal sûr, pas par un courriel ordinaire.'),
    el('p', { class: 'secret' }, secret),
    el('div', { class: 'row' }, copy,
      el('button', {
        type: 'button', id: 'token-secret-done',
        onclick: () => {
          hideSecret();
          const msg = $('#token-form-message');
          msg.className = 'message ok';
          showError(msg, `Jeton ${tokenName(t)} créé ; son secret n’est plus affiché.`);
          roleSelect.focus();
        },
      }, 'C’est remis : masquer le secret')),
    status));
    copy.focus();
  }

  async function copySecret(text, node, status) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        status.textContent = 'Secret copié dans le presse-papiers.';
        return;
      } catch { /* refused (permission): select it instead */ }
    }
    // Without the clipboard API (plain http on the network): select the text
    // and let the browser copy it, or the user.
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    let copied = false;
    try {
      copied = document.execCommand('copy');
    } catch { /* not supported */ }
    status.textContent = copied
      ? 'Secret copié dans le presse-papiers.'
      : 'Copie automatique impossible ici : le secret est sélectionné, copiez-le avec Ctrl+C (ou un appui long).';
  }

  $('#token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const msg = $('#token-form-message');
    for (const sel of Object.values(FIELD_INPUT)) clearFieldError($(sel));
    showError(msg, null);
    const role = roleSelect.value;
    const data = { role };
    const fail = (input, text) => {
      fieldError(input, text);
      msg.className = 'message error';
      showError(msg, 'Le jeton n’a pas été créé : corrigez le champ signalé.');
    };
    if (!role) return fail(roleSelect, 'Choisissez le rôle que donnera le jeton.');
    if (role === 'gp') {
      const rpps = $('#tk-rpps').value.replace(/\s+/g, '');
      if (!isRpps(rpps)) return fail($('#tk-rpps'), 'Un RPPS a 11 chiffres, dont une clé de contrôle : vérifiez-le.');
      data.rpps = rpps;
    }
    if (REQUESTER_ROLES.includes(role)) {
      const v = $('#tk-org').value.trim();
      if (!/^[0-9]+$/.test(v) || Number(v) < 1) return fail($('#tk-org'), 'Indiquez le numéro de l’organisation (un nombre entier).');
      data.organisation_id = Number(v);
    }
    const text = $('#tk-label').value.trim();
    if (text) data.label = text;
    const days = $('#tk-days').value.trim();
    if (days) {
      const n = Number(days);
      if (!Number.isInteger(n) || n < 1 || n > 3650) return fail($('#tk-days'), 'De 1 à 3650 jours, ou vide pour un jeton sans expiration.');
      data.expires_days = n;
    }
    hideSecret();
    return busy($('#token-create'), async () => {
      try {
        const res = await client.call('token.create', data);
        msg.className = 'message ok';
        showError(msg, `Jeton ${tokenName(res.token)} créé. Son secret est affiché ci-dessous, une seule fois.`);
        for (const sel of ['#tk-rpps', '#tk-org', '#tk-label', '#tk-days']) $(sel).value = '';
        showSecret(res);
        await loadTokens();
        if (tokenState.value) loadKnown();
      } catch (e) {
        msg.className = 'message error';
        const input = e.field && FIELD_INPUT[e.field] ? $(FIELD_INPUT[e.field]) : null;
        if (e.code === 'forbidden') {
          showError(msg, role === 'admin'
            ? 'Seul un administrateur du service peut créer un jeton « Administration du service ».'
            : errorText(e));
        } else if (input && (e.code === 'invalid_field' || e.code === 'missing_field')) {
          const why = {
            rpps: 'Ce RPPS n’est pas celui d’un médecin qui exerce dans le territoire.',
            organisation_id: `Aucune organisation de type « ${label('role', role)} » ne porte ce numéro dans le territoire.`,
          }[e.field] || errorText(e);
          fieldError(input, why);
          showError(msg, 'Le jeton n’a pas été créé : corrigez le champ signalé.');
        } else {
          showError(msg, errorText(e));
        }
      }
    });
  });

  // --- CSNP shifts (shift.list, shift.assign; protocol 1.5.0) ------------------------------
  // The next 14 days' shifts of the territory's CSNPs, by day: the
  // practitioner on duty and their status, or « non pourvue », and the
  // patients nobody will see until someone is named; per shift, naming the
  // practitioner on duty (the shift's slots and bookings follow) or freeing
  // it after an inline confirmation.  The choices are the territory's
  // practitioners (territory.get, protocol 1.5.0), those the page sees on
  // duty or with slots over the same days (an older server lists none), the
  // GPs with a token, by RPPS and the token's label, and any RPPS typed.

  const SHIFT_DAYS = 14;
  // The centre is named on each shift only where the territory has several.
  const csnpCount = ((territory && territory.sites) || []).filter((x) => x.kind === 'csnp').length;
  const unfilledOnly = $('#shifts-unfilled');
  const shiftsMessage = $('#shifts-message');
  const names = new Map(); // rpps -> {given_name, family_name}
  let namesLoaded = null; // read once, with the first list
  let shiftsAsked = 0; // the latest read: an earlier answer arriving late is dropped

  function shiftPeriod() {
    const from = zonedParts(client.now(), tz).date;
    return { from, to: addDays(from, SHIFT_DAYS - 1) };
  }

  function learnName(p) {
    if (p) names.set(p.rpps, p);
  }

  async function loadNames() {
    for (const p of (territory && territory.practitioners) || []) learnName(p);
    const to = new Date(client.now() + SHIFT_DAYS * 86400e3).toISOString().replace(/\.\d+Z$/, 'Z');
    try {
      for (const s of (await client.call('slot.list', { to, limit: 1000 })).slots) learnName(s.practitioner);
    } catch { /* the names are a convenience: an RPPS can still be typed */ }
    await knownLoaded;
  }

  /** The practitioners to choose from, [rpps, text]: by name, then the GPs known by their token only. */
  function practitionerChoices() {
    const byName = [...names.values()].sort((a, b) =>
      a.family_name.localeCompare(b.family_name, 'fr') || a.given_name.localeCompare(b.given_name, 'fr'))
      .map((p) => [p.rpps, `Dr ${p.given_name} ${p.family_name} (RPPS ${p.rpps})`]);
    const tokenOnly = new Map();
    for (const t of known) {
      if (t.role === 'gp' && t.rpps && !names.has(t.rpps) && !tokenOnly.has(t.rpps)) {
        tokenOnly.set(t.rpps, `RPPS ${t.rpps}${t.label ? ` (${t.label})` : ''}`);
      }
    }
    return [...byName, ...[...tokenOnly].sort((a, b) => a[0].localeCompare(b[0]))];
  }

  async function loadShifts() {
    const asked = ++shiftsAsked;
    if (!namesLoaded) namesLoaded = loadNames();
    const { from, to } = shiftPeriod();
    try {
      const [res] = await Promise.all([
        client.call('shift.list', unfilledOnly.checked ? { from, to, unfilled: true } : { from, to }),
        namesLoaded]);
      if (asked !== shiftsAsked) return;
      for (const sh of res.shifts) learnName(sh.practitioner);
      renderShifts(res.shifts);
    } catch (e) {
      if (asked === shiftsAsked) fill($('#shifts-box'), el('div', { class: 'message error' }, errorText(e)));
    }
  }

  function renderShifts(shifts) {
    const unfilled = shifts.filter((sh) => !sh.practitioner).length;
    const waiting = shifts.reduce((n, sh) => n + sh.unattended, 0);
    const site = csnpCount === 1 ? ` au ${shifts[0] && shifts[0].site_name}` : '';
    fill($('#shifts-summary'), shifts.length ? [
      plural(shifts.length, 'garde'), site,
      unfilled ? [', dont ', el('strong', {}, plural(unfilled, 'non pourvue', 'non pourvues'))]
        : shifts.length > 1 ? ', toutes pourvues' : ', pourvue',
      waiting ? [' · ', el('strong', { class: 'alert-text' }, `${plural(waiting, 'patient')} sans médecin`)] : null,
      '.'] : null);
    if (!shifts.length) {
      fill($('#shifts-box'), el('p', { class: 'muted', id: 'shifts-empty' }, unfilledOnly.checked
        ? 'Aucune garde non pourvue dans les 14 prochains jours.'
        : 'Aucune garde dans les 14 prochains jours : une garde apparaît dès qu’un CSNP publie ses créneaux.'));
      return;
    }
    const byDay = new Map();
    for (const sh of shifts) {
      if (!byDay.has(sh.date)) byDay.set(sh.date, []);
      byDay.get(sh.date).push(sh);
    }
    fill($('#shifts-box'), [...byDay].map(([day, list]) => [
      el('h3', { class: 'day-title' }, fmtDay(`${day}T00:00`)),
      el('ul', { class: 'list shifts' }, list.map(shiftItem))]));
  }

  // One shift: what it is, who is on duty (or the patients waiting), and
  // what can be done, side by side on a wide screen.
  function shiftItem(sh) {
    const id = sh.shift_id;
    const duty = onDuty(sh);
    const error = el('div', { class: 'message error small', role: 'alert', hidden: true });
    const actions = el('div', { class: 'row shift-actions' });
    const waiting = sh.unattended;
    const item = el('li', {
      class: ['shift', duty ? '' : 'unfilled', waiting ? 'unattended' : ''].join(' ').trim(),
      dataset: { shift: id, filled: duty ? 'yes' : 'no' },
    },
    el('div', { class: 'shift-what' },
      el('strong', { class: 'shift-title', id: `shift-${id}-title`, tabindex: -1 }, label('half_day', sh.half_day)),
      csnpCount === 1 ? null : el('div', { class: 'small muted' }, sh.site_name),
      el('div', { class: 'small' }, shiftSlots(sh))),
    el('div', { class: 'shift-who' },
      el('div', { class: 'small muted' }, 'Médecin de garde'),
      duty ? el('strong', { class: 'on-duty' }, duty) : el('span', { class: 'badge unfilled' }, 'Non pourvue'),
      waiting ? el('p', { class: 'message error small unattended-warning' },
        el('strong', {}, `${plural(waiting, 'patient')} sans médecin`),
        waiting > 1 ? ' : ils attendent' : ' : il attend', ' qu’un médecin de garde soit nommé.') : null),
    el('div', { class: 'shift-act' },
      duty ? el('details', { class: 'change' }, el('summary', {}, 'Changer le médecin de garde'), assignForm(sh, error))
        : assignForm(sh, error),
      actions, error));
    if (duty) showFree(actions, sh, error);
    return item;
  }

  function assignForm(sh, error) {
    const id = sh.shift_id;
    const context = el('span', { class: 'sr-only' }, ` de garde, ${shiftTitle(sh)}`);
    const current = sh.practitioner && sh.practitioner.rpps;
    const who = el('select', { id: `shift-${id}-rpps` },
      el('option', { value: '' }, 'Choisir un médecin…'),
      practitionerChoices().map(([rpps, text]) => el('option', { value: rpps, selected: rpps === current }, text)),
      el('option', { value: 'other' }, 'Autre médecin : saisir son RPPS…'));
    const other = el('input', {
      type: 'text', id: `shift-${id}-other`, inputmode: 'numeric', maxlength: 11, autocomplete: 'off',
    });
    const otherField = el('div', { class: 'field', hidden: true },
      el('label', { for: other.id }, 'RPPS du médecin', context.cloneNode(true)), other);
    const status = el('select', { id: `shift-${id}-status` },
      el('option', { value: '' }, 'Choisir…'),
      Object.keys(LABELS.duty_status).map((k) => el('option', { value: k, selected: sh.duty_status === k }, label('duty_status', k))));
    const button = el('button', { type: 'submit', class: 'primary small', 'data-assign': id },
      sh.practitioner ? 'Changer' : 'Nommer', el('span', { class: 'sr-only' }, ` le médecin de garde, ${shiftTitle(sh)}`));
    who.addEventListener('change', () => {
      otherField.hidden = who.value !== 'other';
      if (!otherField.hidden) other.focus();
    });
    const form = el('form', { class: 'assign', novalidate: true },
      el('div', { class: 'field' }, el('label', { for: who.id }, 'Médecin', context), who),
      otherField,
      el('div', { class: 'field' }, el('label', { for: status.id }, 'Statut', context.cloneNode(true)), status),
      button);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      showError(error, null);
      for (const c of [who, other, status]) c.removeAttribute('aria-invalid');
      const fail = (control, text) => {
        control.setAttribute('aria-invalid', 'true');
        showError(error, text);
        control.focus();
      };
      const rpps = who.value === 'other' ? other.value.replace(/\s+/g, '') : who.value;
      if (!who.value) return fail(who, 'Choisissez le médecin de garde.');
      if (!isRpps(rpps)) return fail(who.value === 'other' ? other : who, 'Un RPPS a 11 chiffres, dont une clé de contrôle : vérifiez-le.');
      if (!status.value) return fail(status, 'Choisissez le statut du médecin sur cette garde.');
      return busy(button, () => assign({ shift_id: id, rpps, duty_status: status.value }, error,
        () => (who.value === 'other' ? other : who)));
    });
    return form;
  }

  function showFree(actions, sh, error) {
    const button = el('button', {
      type: 'button', class: 'danger small', 'data-free': sh.shift_id, onclick: () => askFree(actions, sh, error),
    }, 'Libérer', el('span', { class: 'sr-only' }, ` la garde, ${shiftTitle(sh)}`));
    fill(actions, button);
    return button;
  }

  function askFree(actions, sh, error) {
    const patients = sh.booked === 1 ? 'le patient qui a rendez-vous n’aura plus de médecin'
      : `les ${sh.booked} patients qui ont rendez-vous n’auront plus de médecin`;
    askInline(actions, {
      label: `Libération de la garde, ${shiftTitle(sh)}`,
      question: `Libérer la garde ? ${onDuty(sh)} n’en sera plus le médecin de garde${sh.booked ? ` et ${patients}` : ''}.`,
      confirm: 'Confirmer la libération',
      key: ['free', sh.shift_id],
      onConfirm: (button) => busy(button, () => assign({ shift_id: sh.shift_id }, error, () => showFree(actions, sh, error))),
      onCancel: () => showFree(actions, sh, error).focus(),
    });
  }

  /** Sends shift.assign with DATA; on a refusal shows why in ERROR and focuses what FOCUS() returns. */
  async function assign(data, error, focus) {
    try {
      const res = await client.call('shift.assign', data);
      const sh = res.shift;
      learnName(sh.practitioner);
      shiftsMessage.className = sh.unattended ? 'message warn' : 'message ok';
      showError(shiftsMessage, sh.practitioner
        ? `Garde du ${shiftTitle(sh)} confiée à ${onDuty(sh)} : ${plural(res.slots, 'créneau', 'créneaux')} et ${res.bookings} rendez-vous transmis.`
        : `Garde du ${shiftTitle(sh)} libérée${sh.unattended ? ` : ${plural(sh.unattended, 'patient')} sans médecin` : ''}.`);
      await loadShifts();
      ($(`#shift-${sh.shift_id}-title`) || $('#shifts-title')).focus();
    } catch (e) {
      showError(error, {
        conflict: 'Ce médecin a déjà un créneau au centre pendant cette garde : choisissez-en un autre.',
        not_found: 'Ce médecin n’exerce pas dans le territoire, ou la garde n’existe plus : vérifiez le RPPS ou actualisez la liste.',
      }[e.code] || errorText(e));
      const control = focus();
      if (data.rpps) control.setAttribute('aria-invalid', 'true');
      control.focus();
    }
  }

  unfilledOnly.addEventListener('change', () => {
    showError(shiftsMessage, null);
    loadShifts();
  });
  $('#shifts-refresh').addEventListener('click', (ev) => busy(ev.currentTarget, loadShifts));

  // --- Preconditions of the GPs' participation payment (protocol 1.4.0) ----------------
  // The periods during which a practitioner of the territory was registered
  // with the SAS or a member of the CPTS (docs/participation.md): recorded
  // here, read by the GP's page and attestation.  Setting again the same
  // practitioner, condition and first day closes or corrects the period.

  const frDate = (iso) => iso.split('-').reverse().join('/'); // 2026-02-01 -> 01/02/2026
  const pcRpps = $('#pc-rpps');
  const pcKind = $('#pc-kind');
  const pcMessage = $('#precondition-message');

  function fillPreconditionChoices() {
    const people = [...((territory && territory.practitioners) || [])];
    fill(pcRpps, people.length
      ? people.map((p) => el('option', { value: p.rpps }, `Dr ${p.given_name} ${p.family_name} (RPPS ${p.rpps})`))
      : el('option', { value: '' }, 'Aucun médecin dans le territoire'));
    fill(pcKind, Object.keys(LABELS.precondition_kind).map((k) => el('option', { value: k }, label('precondition_kind', k))));
    $('#pc-from').value = `${zonedParts(client.now(), tz).date.slice(0, 4)}-01-01`;
  }

  async function loadPreconditions() {
    try {
      const res = await client.call('participation.precondition.list');
      const who = new Map(((territory && territory.practitioners) || []).map((p) => [p.rpps, p]));
      fill($('#preconditions-box'), res.preconditions.length
        ? el('ul', { class: 'list', 'aria-labelledby': 'preconditions-list-title' }, res.preconditions.map((c) => {
          const p = who.get(c.rpps);
          return el('li', { dataset: { precondition: c.precondition_id } },
            el('strong', {}, p ? `Dr ${p.given_name} ${p.family_name}` : `RPPS ${c.rpps}`),
            ` · ${label('precondition_kind', c.kind)} depuis le ${frDate(c.valid_from)}`,
            c.valid_to ? ` jusqu’au ${frDate(c.valid_to)}` : ', en cours');
        }))
        : el('p', { class: 'muted' }, 'Aucune période enregistrée : aucun supplément ne peut encore compter.'));
    } catch (e) {
      fill($('#preconditions-box'), el('div', { class: 'message error' }, errorText(e)));
    }
  }

  $('#precondition-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const data = { rpps: pcRpps.value, kind: pcKind.value, valid_from: $('#pc-from').value };
    if ($('#pc-to').value) data.valid_to = $('#pc-to').value;
    if (!data.rpps || !data.valid_from) {
      pcMessage.className = 'message error';
      showError(pcMessage, 'Choisissez le médecin et le premier jour de la période.');
      (data.rpps ? $('#pc-from') : pcRpps).focus();
      return;
    }
    busy($('#precondition-save'), async () => {
      try {
        await client.call('participation.precondition.set', data);
        pcMessage.className = 'message ok';
        showError(pcMessage, 'Période enregistrée.');
        await loadPreconditions();
      } catch (e) {
        pcMessage.className = 'message error';
        showError(pcMessage, e.code === 'invalid_field' && e.field === 'valid_to'
          ? 'Le dernier jour doit suivre le premier.' : errorText(e));
      }
    });
  });

  // --- Territory and settings ----------------------------------------------------------

  function renderTerritory(t) {
    fill($('#territory-box'),
      el('dl', { class: 'kv' },
        el('dt', {}, 'Nom'), el('dd', {}, t.name),
        el('dt', {}, 'Identifiant'), el('dd', {}, t.territory_id),
        el('dt', {}, 'Type'), el('dd', {}, label('territory_kind', t.kind)),
        el('dt', {}, 'Fuseau horaire'), el('dd', {}, t.time_zone),
        el('dt', {}, 'Voisins'), el('dd', {}, t.neighbours.length ? t.neighbours.join(', ') : 'aucun')),
      el('details', {},
        el('summary', {}, `${t.communes.length} communes`),
        el('ul', { class: 'small' }, [...t.communes].sort((a, b) => a.name.localeCompare(b.name, 'fr'))
          .map((c) => el('li', {}, `${c.name} (${c.insee})`)))));
  }

  const numberField = (id, text, unit, min, max, step, value, fallback) => el('div', { class: 'field' },
    el('label', { for: id }, text, el('span', { class: 'hint', id: `${id}-hint` }, `de ${min} à ${max}${unit ? ` ${unit}` : ''}`,
      value == null && fallback != null ? ` ; valeur actuelle non transmise par le serveur (défaut : ${fallback})` : '')),
    el('input', { type: 'number', id, min, max, step, value, inputmode: step === 'any' ? 'decimal' : 'numeric', 'aria-describedby': `${id}-hint` }));

  // The GPs taking new patients to choose from (setting new_patient_gps,
  // protocol 1.6.0): the territory's practitioners by name, then those of
  // the setting that territory.get does not name, by RPPS.
  function newPatientChoices(t) {
    const chosen = t.settings.new_patient_gps || [];
    const people = [...(t.practitioners || [])].sort((a, b) =>
      a.family_name.localeCompare(b.family_name, 'fr') || a.given_name.localeCompare(b.given_name, 'fr'));
    const named = new Set(people.map((p) => p.rpps));
    return [...people.map((p) => [p.rpps, `Dr ${p.given_name} ${p.family_name}`]),
      ...chosen.filter((r) => !named.has(r)).map((r) => [r, `RPPS ${r}`])]
      .map(([rpps, text]) => [rpps, text, chosen.includes(rpps)]);
  }

  const chosenCount = () => {
    const n = $$('input[name="new-patient-gp"]:checked').length;
    $('#set-new-patient-gps-count').textContent = n ? `${plural(n, 'médecin choisi', 'médecins choisis')}.` : 'Aucun médecin choisi.';
  };

  function messageSettings(t) {
    const s = t.settings;
    const choices = newPatientChoices(t);
    return el('fieldset', { id: 'set-messages' }, el('legend', {}, 'Médecin traitant du patient'),
      el('div', { class: 'field' },
        el('label', { class: 'choice' },
          el('input', { type: 'checkbox', id: 'set-mt_summary', checked: s.mt_summary !== false, 'aria-describedby': 'set-mt_summary-hint' }),
          'Compte rendu au médecin traitant'),
        el('span', { class: 'hint', id: 'set-mt_summary-hint' },
          'Après la consultation d’un patient (venu, réorienté vers les urgences ou hospitalisé), son médecin traitant, ',
          's’il est connu et n’est pas le médecin vu, reçoit un compte rendu par messagerie sécurisée.')),
      el('fieldset', { class: 'plain', id: 'set-new-patient-gps', 'aria-describedby': 'set-new-patient-gps-hint' },
        el('legend', {}, 'Médecins qui prennent de nouveaux patients'),
        el('p', { class: 'hint', id: 'set-new-patient-gps-hint' },
          'Un patient sans médecin traitant, vu en consultation, peut être adressé avec son accord à l’un d’eux : ',
          'à celui qui en a reçu le moins.'),
        choices.length
          ? el('div', { class: 'pick-list' }, choices.map(([rpps, text, checked]) => el('label', { class: 'choice' },
            el('input', { type: 'checkbox', name: 'new-patient-gp', value: rpps, checked, onchange: chosenCount }), text)))
          : el('p', { class: 'muted small' }, 'Le serveur ne liste aucun médecin du territoire.'),
        el('p', { class: 'small', id: 'set-new-patient-gps-count', 'aria-live': 'polite' })));
  }

  function renderSettings(t) {
    const s = t.settings;
    fill($('#settings-fields'),
      el('div', { class: 'cols c2' }, SETTINGS.map((f) =>
        numberField(`set-${f.key}`, f.text, f.unit, f.min, f.max, stepOf(f), s[f.key], f.default))),
      messageSettings(t),
      el('fieldset', {}, el('legend', {}, 'Poids du classement des créneaux'),
        el('p', { class: 'small muted' }, 'Plus un poids est élevé, plus sa règle compte dans le choix du créneau proposé ; 0 la désactive.'),
        el('div', { class: 'cols c2' }, WEIGHTS.map((f) =>
          numberField(`set-w-${f.name}`, f.text, '', f.min, f.max, stepOf(f), s.weights[f.name])))));
    chosenCount();
  }

  $('#settings-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const msg = $('#settings-message');
    const s = territory.settings;
    const changes = {};
    const weights = {};
    for (const x of document.querySelectorAll('#settings-fields [aria-invalid]')) x.removeAttribute('aria-invalid');
    const read = (id, min, max, integer) => {
      const input = $(`#${id}`);
      const v = Number(input.value);
      if (input.value.trim() === '' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        throw new Error(`Valeur hors limites : de ${min} à ${max}${integer ? ', nombre entier' : ''}.`);
      }
      return v;
    };
    try {
      for (const f of SETTINGS) {
        // A setting the server did not send (see the report on issue 5) is
        // left alone while its field stays empty.
        if (s[f.key] == null && $(`#set-${f.key}`).value.trim() === '') continue;
        const v = read(`set-${f.key}`, f.min, f.max, f.kind === 'integer');
        if (v !== s[f.key]) changes[f.key] = v;
      }
      for (const f of WEIGHTS) {
        const v = read(`set-w-${f.name}`, f.min, f.max, f.kind === 'integer');
        if (v !== s.weights[f.name]) weights[f.name] = v;
      }
    } catch (e) {
      msg.className = 'message error';
      showError(msg, e.message);
      return;
    }
    if (Object.keys(weights).length) changes.weights = weights;
    const summary = $('#set-mt_summary').checked;
    if (summary !== (s.mt_summary !== false)) changes.mt_summary = summary;
    const gps = $$('input[name="new-patient-gp"]:checked').map((b) => b.value);
    const before = s.new_patient_gps || [];
    if (gps.length !== before.length || gps.some((r) => !before.includes(r))) changes.new_patient_gps = gps;
    if (!Object.keys(changes).length) {
      msg.className = 'message';
      showError(msg, 'Aucun changement à enregistrer.');
      return;
    }
    busy($('#settings-save'), async () => {
      try {
        territory = await client.call('territory.settings.update', changes);
        renderTerritory(territory);
        renderSettings(territory);
        msg.className = 'message ok';
        showError(msg, `Réglages enregistrés (${Object.keys(changes).length} modifié${Object.keys(changes).length > 1 ? 's' : ''}).`);
      } catch (e) {
        msg.className = 'message error';
        showError(msg, errorText(e));
      }
    });
  });

  if (territory) {
    renderTerritory(territory);
    renderSettings(territory);
  }
  loadIndicators();
  showRoleFields();
  loadTokens();
  const knownLoaded = loadKnown();
  loadShifts();
  fillPreconditionChoices();
  loadPreconditions();
  const loadMessages = mountMessages(client, $('#messages-box'), $('#messages-state'), $('#messages-refresh'));
  client.on('resync', async () => {
    loadTokens();
    loadMessages();
    loadShifts();
    try {
      territory = await client.call('territory.get');
      renderTerritory(territory);
    } catch { /* shown on the next action */ }
  });
}
