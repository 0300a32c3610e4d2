// sas.js: the SAS live board (also the CPTS desk's, and the coordinator's
// with totals only).  Free capacity by horizon (capacity.query for each of
// 2h, 4h, today, 24h, 48h), by commune as a table and as an SVG map drawn
// from the communes' coordinates (no tiles: the service runs without
// internet), the free slots, all updated live (topic "capacity": each
// capacity.changed triggers a new query), booking on behalf of a patient
// with the requester flow, and for the SAS the issue of each call (calls.js).
import { $, el, fill, startPage, label, LABELS, errorText, toast, prefs, PAGES,
  fmtShort, fmtTime, practitionerName, siteCommune, parts } from './app.js';
import { mountRequester } from './requester.js';
import { mountCallRecord } from './calls.js';

const HORIZONS = ['2h', '4h', 'today', '24h', '48h'];

const ctx = await startPage(['sas', 'desk', 'coordinator', 'admin']);
if (ctx) main(ctx);

function main(ctx) {
  const { client, session, territory } = ctx;
  const role = session.role;
  const withSlots = role === 'sas' || role === 'desk';
  const territoryCommunes = (territory && territory.communes) || [];
  let results = {}; // horizon -> capacity.query answer
  let shown = prefs.get('board.horizon', 'today');
  let selected = null; // commune filter of the slot list
  let loading = false;
  let again = false;

  fill($('#nav'), (PAGES[role] || []).filter(([href]) => href !== 'sas.html')
    .map(([href, text]) => el('a', { href }, text)));

  // --- Controls ------------------------------------------------------------------

  fill($('#horizons'), HORIZONS.map((h) => el('label', { class: 'choice' },
    el('input', { type: 'radio', name: 'horizon', value: h, checked: h === shown }), label('horizon', h))));
  $('#horizons').addEventListener('change', (ev) => {
    shown = ev.target.value;
    prefs.set('board.horizon', shown);
    render();
  });
  const centre = $('#centre');
  for (const c of [...territoryCommunes].sort((a, b) => a.name.localeCompare(b.name, 'fr'))) {
    centre.append(el('option', { value: c.insee }, c.name));
  }
  fill($('#modes'), Object.keys(LABELS.mode).map((m) => el('label', { class: 'choice' },
    el('input', { type: 'checkbox', name: 'mode', value: m, checked: true }), label('mode', m))));
  for (const node of [centre, $('#radius'), $('#modes')]) node.addEventListener('change', refresh);
  $('#clear-commune').addEventListener('click', () => { selected = null; render(); });

  function query(horizon) {
    const data = { horizon };
    if (centre.value) {
      data.commune_insee = centre.value;
      data.radius_km = Number($('#radius').value);
    }
    const modes = [...document.querySelectorAll('input[name="mode"]:checked')].map((b) => b.value);
    if (modes.length && modes.length < 3) data.modes = modes;
    return data;
  }

  // --- Loading -----------------------------------------------------------------------

  async function refresh() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    try {
      const answers = await Promise.all(HORIZONS.map((h) => client.call('capacity.query', query(h))));
      results = {};
      HORIZONS.forEach((h, i) => { results[h] = answers[i]; });
      fill($('#updated'), `Mis à jour à ${new Date(client.now()).toLocaleTimeString('fr-FR', { timeZone: (territory && territory.time_zone) || 'Europe/Paris' })}`);
      render();
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      loading = false;
      if (again) {
        again = false;
        setTimeout(refresh, 100);
      }
    }
  }

  // Communes to show: the territory's, and those of sites in neighbouring
  // territories whose slots are offered here (placed at their site).
  function communesShown() {
    const map = new Map(territoryCommunes.map((c) => [c.insee, { ...c }]));
    for (const h of HORIZONS) {
      for (const s of (results[h] && results[h].slots) || []) {
        if (!map.has(s.site.commune_insee)) {
          map.set(s.site.commune_insee, {
            insee: s.site.commune_insee, name: siteCommune(s.site, territoryCommunes),
            latitude: s.site.latitude, longitude: s.site.longitude, outside: true,
          });
        }
      }
    }
    return [...map.values()].sort((a, b) => a.name.localeCompare(b.name, 'fr'));
  }

  function countsByCommune(horizon) {
    const counts = new Map();
    for (const s of (results[horizon] && results[horizon].slots) || []) {
      counts.set(s.site.commune_insee, (counts.get(s.site.commune_insee) || 0) + 1);
    }
    return counts;
  }

  // --- Rendering ----------------------------------------------------------------------

  function render() {
    if (!results[shown]) return;
    renderTotals();
    renderTable();
    renderMap();
    renderSlots();
  }

  function renderTotals() {
    fill($('#totals'), HORIZONS.map((h) => el('div', { class: 'stat', role: 'listitem', id: `stat-${h}` },
      el('div', { class: 'big-number', dataset: { count: results[h].total } }, results[h].total),
      el('div', { class: 'label' }, h === 'today' ? 'aujourd’hui' : `dans les ${label('horizon', h)}`),
      el('div', { class: 'label small' }, byMode(results[h].by_mode)))));
  }

  // "12 cab. · 1 dom." (modes with free slots only), each part unbroken.
  function byMode(m) {
    const partsOf = [['office', 'cab.', 'au cabinet'], ['home', 'dom.', 'à domicile'], ['teleconsultation', 'télé.', 'en téléconsultation']]
      .filter(([k]) => m[k] > 0)
      .map(([k, short, long]) => el('abbr', { class: 'nowrap', title: `${m[k]} ${long}` }, `${m[k]} ${short}`));
    return partsOf.length ? partsOf.flatMap((x, i) => (i ? [' · ', x] : [x])) : '—';
  }

  function renderTable() {
    if (!withSlots) {
      fill($('#table-box'), el('p', { class: 'muted' },
        'Le détail par commune et la liste des créneaux sont réservés à la régulation et à l’accueil de la CPTS ; les totaux ci-dessus valent pour tout le territoire.'));
      return;
    }
    const communes = communesShown();
    const counts = Object.fromEntries(HORIZONS.map((h) => [h, countsByCommune(h)]));
    fill($('#table-box'), el('table', { id: 'capacity-table' },
      el('caption', { class: 'muted small' }, 'Créneaux libres par commune du lieu de consultation'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Commune'),
        HORIZONS.map((h) => el('th', { scope: 'col', class: 'num' }, h === 'today'
          ? el('abbr', { title: 'aujourd’hui' }, 'Auj.') : label('horizon', h))))),
      el('tbody', {}, communes.map((c) => el('tr', { class: selected === c.insee ? 'selected' : null, dataset: { insee: c.insee } },
        el('th', { scope: 'row' }, el('a', {
          href: '#slots-card', onclick: (ev) => { ev.preventDefault(); select(c.insee); },
        }, c.name), c.outside ? el('span', { class: 'small muted', title: 'Commune d’un territoire voisin' }, ' · voisin') : null),
        HORIZONS.map((h) => el('td', { class: counts[h].get(c.insee) ? 'num' : 'num zero' }, counts[h].get(c.insee) || 0))))),
      el('tfoot', {}, el('tr', { class: 'total' }, el('th', { scope: 'row' }, 'Total'),
        HORIZONS.map((h) => el('td', { class: 'num' }, results[h].total))))));
  }

  function renderMap() {
    if (!withSlots) {
      fill($('#map-box'), el('p', { class: 'muted' }, 'La carte par commune est réservée à la régulation et à l’accueil de la CPTS.'));
      return;
    }
    const all = communesShown().filter((c) => Number.isFinite(c.latitude) && Number.isFinite(c.longitude));
    const counts = countsByCommune(shown);
    const widest = countsByCommune('48h');
    // The frame fits the communes that have capacity within 48 h and those
    // near the middle of the territory: a SAS territory may list a distant
    // seat (Rennes for the demo), which would squeeze the others into a
    // corner.  Communes outside the frame are named below the map.
    const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
    const mLat = median(all.map((c) => c.latitude));
    const mLon = median(all.map((c) => c.longitude));
    const far = all.map((c) => Math.hypot(c.latitude - mLat, (c.longitude - mLon) * Math.cos((mLat * Math.PI) / 180)));
    const typical = Math.max(median(far), 0.02);
    const frame = all.filter((c, i) => widest.get(c.insee) || far[i] <= 3 * typical);
    if (!frame.length) {
      fill($('#map-box'), el('p', { class: 'muted' }, 'Aucune commune à placer.'));
      return;
    }
    // Equirectangular projection: x = longitude × cos(mean latitude), y = −latitude,
    // scaled to fit the bounding box of the framed communes.
    const lat0 = frame.reduce((t, c) => t + c.latitude, 0) / frame.length;
    const k = Math.cos((lat0 * Math.PI) / 180);
    const xs = frame.map((c) => c.longitude * k);
    const ys = frame.map((c) => -c.latitude);
    const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    // One unit of the drawing is about one screen pixel, so that names stay
    // readable on a phone.
    const W = Math.round(Math.max(320, Math.min(720, $('#map-box').clientWidth || 600)));
    const pad = W < 480 ? 40 : 56;
    const spanX = Math.max(maxX - minX, 1e-3);
    const spanY = Math.max(maxY - minY, 1e-3);
    const scale = Math.min((W - 2 * pad) / spanX, (W < 480 ? 300 : 360) / spanY);
    const H = Math.round(Math.max(240, spanY * scale + 2 * pad));
    const ox = (W - spanX * scale) / 2;
    const oy = (H - spanY * scale) / 2;
    const project = (c) => [ox + (c.longitude * k - minX) * scale, oy + (-c.latitude - minY) * scale];
    const inside = ([x, y]) => x >= 4 && x <= W - 4 && y >= 4 && y <= H - 4;
    const items = all.map((c) => ({ c, n: counts.get(c.insee) || 0, p: project(c) }))
      .filter((it) => inside(it.p))
      .sort((a, b) => b.n - a.n);
    const outside = all.filter((c) => !inside(project(c)));
    // Greedy label placement: below, above, right or left of the circle,
    // whichever overlaps no circle or label placed before.
    const boxes = items.map(({ n, p: [x, y] }) => {
      const r = n ? Math.min(6 + 4 * Math.sqrt(n), 34) : 5;
      return { x: x - r, y: y - r, w: 2 * r, h: 2 * r, r };
    });
    const overlaps = (a) => boxes.some((b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h);
    // A commune without capacity whose name finds no free place stays
    // unnamed on the map (its circle has a title; the table names it).
    const labels = items.map(({ c, n, p: [x, y] }, i) => {
      const { r } = boxes[i];
      const w = c.name.length * 7.2 + 4;
      const h = 14;
      const candidates = [
        { x: x - w / 2, y: y + r + 1, tx: x, ty: y + r + 12, anchor: 'middle' },
        { x: x - w / 2, y: y - r - h - 1, tx: x, ty: y - r - 4, anchor: 'middle' },
        { x: x + r + 2, y: y - h / 2, tx: x + r + 4, ty: y + 4, anchor: 'start' },
        { x: x - r - w - 2, y: y - h / 2, tx: x - r - 4, ty: y + 4, anchor: 'end' },
      ].filter((b) => b.x >= 0 && b.x + w <= W && b.y >= 0 && b.y + h <= H);
      const free = candidates.find((b) => !overlaps({ ...b, w, h }));
      if (!free && !n) return null;
      const best = free || candidates[0] || { x, y, tx: x, ty: y + r + 12, anchor: 'middle' };
      boxes.push({ x: best.x, y: best.y, w, h });
      return best;
    });
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const plural = (n) => `${n} créneau${n > 1 ? 'x' : ''} libre${n > 1 ? 's' : ''}`;
    const svg = el('svg', {
      class: 'map', id: 'map', viewBox: `0 0 ${W} ${H}`, role: 'group',
      'aria-label': `Carte des communes : ${plural(total)}, horizon ${label('horizon', shown)}`,
    },
    // Largest circles first so that small ones stay clickable on top.
    items.map(({ c, n, p: [x, y] }, i) => el('g', {
      class: `commune${n ? '' : ' empty'}${selected === c.insee ? ' selected' : ''}`,
      tabindex: 0, role: 'button',
      'aria-label': `${c.name} : ${plural(n)}`, 'aria-pressed': selected === c.insee ? 'true' : 'false',
      dataset: { insee: c.insee, count: n },
      onclick: () => select(c.insee),
      onkeydown: (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); select(c.insee); }
      },
    },
    el('title', {}, `${c.name} : ${plural(n)}`),
    el('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: boxes[i].r.toFixed(1) }),
    n ? el('text', { class: 'count', x: x.toFixed(1), y: (y + 4).toFixed(1), 'text-anchor': 'middle' }, n) : null,
    labels[i] ? el('text', { x: labels[i].tx.toFixed(1), y: labels[i].ty.toFixed(1), 'text-anchor': labels[i].anchor }, c.name) : null)));
    fill($('#map-box'), svg, outside.length
      ? el('p', { class: 'legend' }, 'Hors du cadre : ', outside.map((c) => `${c.name} (${plural(counts.get(c.insee) || 0)})`).join(', '), '.')
      : null);
  }

  function select(insee) {
    selected = selected === insee ? null : insee;
    render();
    const g = document.querySelector(`#map g[data-insee="${insee}"]`);
    if (g && document.activeElement && document.activeElement.closest && document.activeElement.closest('#map')) g.focus();
  }

  function renderSlots() {
    const box = $('#slots-box');
    const answer = results[shown];
    const commune = selected ? communesShown().find((c) => c.insee === selected) : null;
    fill($('#slots-title'), `Créneaux libres · ${shown === 'today' ? 'aujourd’hui' : `dans les ${label('horizon', shown)}`}`,
      commune ? ` · ${commune.name}` : '');
    $('#clear-commune').hidden = !selected;
    if (!withSlots) {
      fill(box, el('p', { class: 'muted' }, 'La liste des créneaux est réservée à la régulation et à l’accueil de la CPTS.'));
      return;
    }
    const slots = (answer.slots || []).filter((s) => !selected || s.site.commune_insee === selected);
    if (!slots.length) {
      fill(box, el('p', { class: 'muted' }, 'Aucun créneau libre pour cet horizon.'));
      return;
    }
    let lastDay = null;
    const items = [];
    for (const s of slots) {
      const day = parts(s.start).date;
      if (day !== lastDay) {
        items.push(el('li', { class: 'day-title cap', role: 'presentation' }, fmtShort(s.start).replace(/ \d\d:\d\d$/, '')));
        lastDay = day;
      }
      items.push(el('li', { dataset: { slot: s.slot_id } },
        el('div', { class: 'row' },
          el('strong', { class: 'nowrap' }, `${fmtTime(s.start)}–${fmtTime(s.end)}`),
          el('span', {}, siteCommune(s.site, territoryCommunes)),
          el('span', { class: 'badge free' }, label('mode', s.mode))),
        el('div', { class: 'small' }, `${practitionerName(s)} · ${s.site.name}`),
        el('div', { class: 'small muted' }, 'Ouvert à : ', s.released_at ? 'tous (libéré)' : s.audiences.map((a) => label('audience', a)).join(', '))));
    }
    fill(box, el('ul', { class: 'list slot-list', id: 'board-slots' }, items),
      answer.truncated ? el('p', { class: 'muted' }, 'Liste tronquée aux 1000 premiers créneaux.') : null);
  }

  // --- Live updates -----------------------------------------------------------------

  let pushTimer = null;
  client.on('capacity.changed', () => {
    clearTimeout(pushTimer);
    pushTimer = setTimeout(refresh, 250);
  });
  client.on('resync', refresh);
  // The horizons move with the clock; and without the WebSocket, poll.
  setInterval(() => {
    if (client.status !== 'online') refresh();
  }, 30000);
  setInterval(refresh, 120000);

  let resizeTimer = null;
  let lastWidth = window.innerWidth;
  window.addEventListener('resize', () => {
    if (window.innerWidth === lastWidth) return;
    lastWidth = window.innerWidth;
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(render, 200);
  });

  client.subscribe(['capacity']).catch((e) => toast(errorText(e), 'error'));
  refresh();

  if (['sas', 'desk'].includes(role)) {
    $('#book-card').hidden = false;
    mountRequester(ctx, $('#form-box'), $('#offer-box'), null);
  }
  // The call record is the regulator's alone (call.record: role sas).
  if (role === 'sas') {
    $('#call-card').hidden = false;
    mountCallRecord(ctx, $('#call-box'));
  }
}
