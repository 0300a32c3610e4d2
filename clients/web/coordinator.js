// coordinator.js: the coordinator's page (also admin): the month's declared
// indicators (indicators.get), the territory (territory.get) and its settings
// (territory.settings.update, only the members changed).
//
// indicators.get may answer not_found while the server does not compute
// indicators yet: the page then says so and shows no figure.
import { $, el, fill, startPage, label, errorText, showError, busy, zonedParts, PAGES } from './app.js';

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

const SETTINGS = [
  { key: 'hold_seconds', text: 'Durée de réservation d’un créneau proposé', unit: 's', min: 30, max: 3600, step: 1 },
  { key: 'alternatives', text: 'Autres créneaux listés avec une proposition', min: 0, max: 10, step: 1 },
  { key: 'outcome_delay_hours', text: 'Délai pour déclarer l’issue d’un rendez-vous', unit: 'h', min: 1, max: 720, step: 1 },
  { key: 'identity_retention_days', text: 'Conservation de l’identité des patients', unit: 'jours', min: 1, max: 3650, step: 1, fallback: 90 },
  { key: 'indicator_mask_threshold', text: 'Seuil de masquage des indicateurs (patients)', min: 2, max: 100, step: 1, fallback: 5 },
  { key: 'indicator_consolidation_days', text: 'Délai de consolidation des indicateurs', unit: 'jours', min: 1, max: 90, step: 1, fallback: 7 },
  { key: 'contract_start_month', text: 'Premier mois de l’année du contrat', min: 1, max: 12, step: 1, fallback: 1 },
  { key: 'audit_retention_months', text: 'Conservation du journal d’audit', unit: 'mois', min: 1, max: 120, step: 1, fallback: 12 },
];
const WEIGHTS = [
  { key: 'start_per_hour', text: 'Coût par heure d’attente' },
  { key: 'distance_per_km', text: 'Coût par kilomètre' },
  { key: 'own_mt_bonus', text: 'Bonus du médecin traitant' },
  { key: 'fairness', text: 'Équité entre médecins' },
  { key: 'scarcity', text: 'Préserver les créneaux rares' },
];

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

  const fmtValue = (ind) => {
    if (ind.unit === 'ratio') return `${(ind.value * 100).toLocaleString('fr-FR', { maximumFractionDigits: 1 })} %`;
    return `${ind.value.toLocaleString('fr-FR')}${ind.unit ? ` ${ind.unit}` : ''}`;
  };

  async function loadIndicators() {
    const box = $('#indicators-box');
    fill(box, el('p', { class: 'muted' }, 'Chargement…'));
    try {
      const res = await client.call('indicators.get', { month: month.value });
      if (!res.indicators.length) {
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
          el('text', { x: 0, y: i * rowH + 14 }, INDICATOR_LABELS[ind.name] || ind.name),
          el('rect', { x: 0, y: i * rowH + 20, width: w.toFixed(1), height: 16 }),
          el('text', { x: (w + 6).toFixed(1), y: i * rowH + 33 }, ind.value.toLocaleString('fr-FR')));
      })) : null;
      fill(box,
        el('div', { class: 'table-wrap' }, el('table', { id: 'indicators-table' },
          el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Indicateur'), el('th', { scope: 'col', class: 'num' }, 'Valeur'),
            el('th', { scope: 'col', class: 'num' }, 'Définition'))),
          el('tbody', {}, res.indicators.map((ind) => el('tr', {},
            el('th', { scope: 'row' }, INDICATOR_LABELS[ind.name] || ind.name, el('span', { class: 'hint' }, ind.name)),
            el('td', { class: 'num' }, fmtValue(ind)),
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

  function renderSettings(t) {
    const s = t.settings;
    fill($('#settings-fields'),
      el('div', { class: 'cols c2' }, SETTINGS.map((f) =>
        numberField(`set-${f.key}`, f.text, f.unit, f.min, f.max, f.step, s[f.key], f.fallback))),
      el('fieldset', {}, el('legend', {}, 'Poids du classement des créneaux'),
        el('p', { class: 'small muted' }, 'Plus un poids est élevé, plus sa règle compte dans le choix du créneau proposé ; 0 la désactive.'),
        el('div', { class: 'cols c2' }, WEIGHTS.map((f) =>
          numberField(`set-w-${f.key}`, f.text, '', 0, 1000, 'any', s.weights[f.key])))));
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
        const v = read(`set-${f.key}`, f.min, f.max, true);
        if (v !== s[f.key]) changes[f.key] = v;
      }
      for (const f of WEIGHTS) {
        const v = read(`set-w-${f.key}`, 0, 1000, false);
        if (v !== s.weights[f.key]) weights[f.key] = v;
      }
    } catch (e) {
      msg.className = 'message error';
      showError(msg, e.message);
      return;
    }
    if (Object.keys(weights).length) changes.weights = weights;
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
  client.on('resync', async () => {
    try {
      territory = await client.call('territory.get');
      renderTerritory(territory);
    } catch { /* shown on the next action */ }
  });
}
