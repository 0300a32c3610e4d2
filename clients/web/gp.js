// gp.js: the GP's page.  Publishes a half-day of slots in two clicks (a
// preset, then "Publier"), lists the GP's own slots (withdraw a free one) and
// bookings (with the patient, as the GP booked may see them), shows new
// bookings live (topic "bookings") and records outcomes; refers a patient
// seen who has no médecin traitant to a GP taking new patients; lists the
// CSNP shifts the GP is on duty for and the year's participation.
//
// The sites where a GP practises come with the sign-in (the auth answer's
// sites, protocol 1.2.0, with their kind and commune from territory.get); the
// page also learns sites from the GP's own slots and bookings, and otherwise
// (an older server, a site the coordination has not linked yet) asks for the
// site's number once and remembers it in this browser.
import {
  $, el, fill, startPage, label, LABELS, errorText, errorWithReason, toast, showError, busy, prefs, askInline,
  fmtTime, fmtDay, fmtShort, parts, zonedParts, ageOf, patientName, siteCommune, saveFile,
  renderBookingList, addDays,
  shiftTitle, shiftSlots,
} from './app.js';

const DEFAULT_AUDIENCES = ['sas', 'emergency', 'pharmacy', 'professional', 'desk'];

const ctx = await startPage(['gp']);
if (ctx) main(ctx);

function main({ client, session, territory }) {
  const tz = (territory && territory.time_zone) || 'Europe/Paris';
  const communes = (territory && territory.communes) || [];
  const prefKey = (k) => `gp.${session.rpps}.${k}`;
  const sites = new Map(); // site_id -> site, from the session, slots and bookings
  for (const s of prefs.get(prefKey('sites'), [])) sites.set(s.site_id, s);
  const territorySites = new Map(((territory && territory.sites) || []).map((s) => [s.site_id, s]));
  for (const s of session.sites || []) {
    const t = territorySites.get(s.site_id) || {};
    sites.set(s.site_id, { site_id: s.site_id, name: s.name, kind: t.kind || 'practice', commune_insee: t.commune_insee });
  }
  let slots = [];
  const bookings = new Map(); // booking_id -> booking
  const fresh = new Set(); // booking ids that arrived live, highlighted
  let chosen = null; // the preset waiting for confirmation
  const openDays = new Set(); // days unfolded in the slot list
  let daysTouched = false;

  // --- Settings -------------------------------------------------------------

  const siteSelect = $('#site');
  const siteIdInput = $('#site-id');
  const siteIdField = $('#site-id-field');
  const modeSelect = $('#mode');
  const everySelect = $('#every');
  const releaseBox = $('#release');

  fill($('#audiences'), Object.keys(LABELS.audience).map((a) =>
    el('label', { class: 'choice' },
      el('input', { type: 'checkbox', name: 'audience', value: a }), label('audience', a))));
  const savedAudiences = prefs.get(prefKey('audiences'), DEFAULT_AUDIENCES);
  for (const box of document.querySelectorAll('input[name="audience"]')) {
    box.checked = savedAudiences.includes(box.value);
  }
  modeSelect.value = prefs.get(prefKey('mode'), 'office');
  everySelect.value = String(prefs.get(prefKey('every'), 20));
  releaseBox.checked = prefs.get(prefKey('release'), false);
  const savedSite = prefs.get(prefKey('site'), null);
  if (savedSite) siteIdInput.value = savedSite;

  function renderSites() {
    let current = siteSelect.value || (savedSite ? String(savedSite) : '');
    const known = [...sites.values()].sort((a, b) =>
      (a.kind === 'practice' ? 0 : 1) - (b.kind === 'practice' ? 0 : 1) || a.name.localeCompare(b.name, 'fr'));
    const options = known.map((s) => el('option', { value: s.site_id },
      `${s.name} (${label('site_kind', s.kind).toLowerCase()}, ${siteCommune(s, communes)})`));
    fill(siteSelect, options, el('option', { value: 'other' }, 'Autre site (saisir son numéro)'));
    // A number typed by hand stays chosen (as its name once it is known);
    // otherwise the first known site.
    if ((!current || current === 'other') && siteIdInput.value && sites.has(Number(siteIdInput.value))) {
      current = String(Number(siteIdInput.value));
    } else if ((!current || current === 'other') && !siteIdInput.value && known.length) {
      current = String(known[0].site_id);
    }
    if (current && [...siteSelect.options].some((o) => o.value === current)) siteSelect.value = current;
    else siteSelect.value = 'other';
    siteIdField.hidden = siteSelect.value !== 'other';
  }

  function learnSite(site) {
    if (!site || sites.has(site.site_id)) return;
    sites.set(site.site_id, {
      site_id: site.site_id, name: site.name, kind: site.kind,
      commune_insee: site.commune_insee, commune_name: site.commune_name,
    });
    prefs.set(prefKey('sites'), [...sites.values()]);
    renderSites();
  }

  function chosenSiteId() {
    if (siteSelect.value && siteSelect.value !== 'other') return Number(siteSelect.value);
    const n = Number(siteIdInput.value);
    return Number.isInteger(n) && n > 0 ? n : null;
  }

  siteSelect.addEventListener('change', () => {
    siteIdField.hidden = siteSelect.value !== 'other';
    if (siteSelect.value !== 'other') prefs.set(prefKey('site'), Number(siteSelect.value));
    renderPresets();
  });
  siteIdInput.addEventListener('change', () => {
    const id = chosenSiteId();
    if (id) prefs.set(prefKey('site'), id);
    renderPresets();
  });
  modeSelect.addEventListener('change', () => { prefs.set(prefKey('mode'), modeSelect.value); renderPresets(); });
  everySelect.addEventListener('change', () => { prefs.set(prefKey('every'), Number(everySelect.value)); renderPresets(); });
  releaseBox.addEventListener('change', () => prefs.set(prefKey('release'), releaseBox.checked));
  $('#audiences').addEventListener('change', () => prefs.set(prefKey('audiences'), audiences()));

  function audiences() {
    return [...document.querySelectorAll('input[name="audience"]:checked')].map((b) => b.value);
  }

  // --- Presets ------------------------------------------------------------------

  const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
  const weekdayOf = (date) => WEEKDAYS[new Date(`${date}T12:00:00Z`).getUTCDay()];
  const minutes = (hhmm) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));

  function presets() {
    const now = zonedParts(client.now(), tz);
    const nowMin = now.hour * 60 + now.minute;
    const today = now.date;
    const tomorrow = addDays(today, 1);
    return [
      { id: 'today-afternoon', title: 'Cet après-midi', date: today, from: '14:00', to: '18:00',
        past: nowMin > minutes('18:00') - Number(everySelect.value) },
      { id: 'tomorrow-morning', title: 'Demain matin', date: tomorrow, from: '08:00', to: '12:00' },
      { id: 'tomorrow-afternoon', title: 'Demain après-midi', date: tomorrow, from: '14:00', to: '18:00' },
    ].map((p) => {
      const every = Number(everySelect.value);
      const first = p.date === today ? Math.max(minutes(p.from), nowMin + 1) : minutes(p.from);
      let count = 0;
      for (let t = minutes(p.from); t + every <= minutes(p.to); t += every) if (t >= first) count++;
      return { ...p, every, count };
    });
  }

  const hours = (hhmm) => `${Number(hhmm.slice(0, 2))} h${hhmm.slice(3) === '00' ? '' : hhmm.slice(3)}`;

  function renderPresets() {
    fill($('#presets'), presets().map((p) => el('button', {
      type: 'button', class: 'preset', 'aria-pressed': chosen && chosen.id === p.id ? 'true' : 'false',
      disabled: p.past || p.count === 0, dataset: { preset: p.id },
      onclick: () => choose(p),
    }, el('span', {}, p.title),
    el('span', { class: 'sub' }, p.past || p.count === 0
      ? `${fmtDay(`${p.date}T00:00`)} : terminé`
      : `${fmtDay(`${p.date}T00:00`)}, ${hours(p.from)}–${hours(p.to)}, toutes les ${p.every} min`))));
  }

  function choose(p) {
    const msg = $('#publish-message');
    msg.hidden = true;
    const siteId = chosenSiteId();
    if (!siteId) {
      $('#settings').open = true;
      siteIdInput.setAttribute('aria-invalid', 'true');
      siteIdInput.focus();
      msg.className = 'message error';
      showError(msg, 'Indiquez d’abord le site où vous recevrez les patients (réglages ci-dessous).');
      return;
    }
    siteIdInput.removeAttribute('aria-invalid');
    if (!audiences().length) {
      $('#settings').open = true;
      msg.className = 'message error';
      showError(msg, 'Cochez au moins un public qui pourra réserver ces créneaux.');
      return;
    }
    chosen = p;
    const site = sites.get(siteId);
    fill($('#confirm-text'),
      el('strong', {}, `${p.count} créneau${p.count > 1 ? 'x' : ''} de ${p.every} min`),
      ` le ${fmtDay(`${p.date}T00:00`)} de ${p.from} à ${p.to}`,
      ` (${label('mode', modeSelect.value).toLowerCase()}, ${site ? site.name : `site n° ${siteId}`}),`,
      ` ouverts à : ${audiences().map((a) => label('audience', a)).join(', ')}.`);
    $('#confirm').hidden = false;
    renderPresets();
    $('#confirm-publish').focus();
  }

  $('#confirm-cancel').addEventListener('click', () => {
    chosen = null;
    $('#confirm').hidden = true;
    renderPresets();
  });

  $('#confirm-publish').addEventListener('click', (ev) => busy(ev.currentTarget, async () => {
    const p = chosen;
    if (!p) return;
    const msg = $('#publish-message');
    const siteId = chosenSiteId();
    const data = {
      site_id: siteId,
      mode: modeSelect.value,
      audiences: audiences(),
      pattern: {
        from_date: p.date, to_date: p.date, days: [weekdayOf(p.date)],
        from_time: p.from, to_time: p.to, every_min: p.every,
      },
    };
    if (releaseBox.checked) data.release_minutes = 120;
    try {
      const res = await client.call('slot.publish', data);
      prefs.set(prefKey('site'), siteId);
      chosen = null;
      $('#confirm').hidden = true;
      msg.className = res.count ? 'message ok' : 'message warn';
      showError(msg, res.count
        ? `${res.count} créneau${res.count > 1 ? 'x' : ''} publié${res.count > 1 ? 's' : ''}` +
          (res.skipped ? ` (${res.skipped} déjà existant${res.skipped > 1 ? 's' : ''} ou passé${res.skipped > 1 ? 's' : ''}).` : '.')
        : 'Aucun créneau créé : ils existent déjà ou leur heure est passée.');
      await loadSlots();
    } catch (e) {
      msg.className = 'message error';
      showError(msg, e.code === 'not_found' || e.code === 'other_territory' || e.code === 'forbidden'
        ? `Le site n° ${siteId} n’existe pas ou vous n’y exercez pas : vérifiez son numéro auprès de la coordination.`
        : errorText(e));
    }
    renderPresets();
  }));

  // --- Slots ----------------------------------------------------------------------

  async function loadSlots() {
    try {
      const res = await client.call('slot.list', { limit: 1000 });
      slots = res.slots;
      for (const s of slots) learnSite(s.site);
      renderSlots(res.truncated);
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  function renderSlots(truncated) {
    const box = $('#slots-list');
    const free = slots.filter((s) => s.status === 'free').length;
    const booked = slots.filter((s) => s.status === 'booked').length;
    fill($('#slots-summary'), `${free} libre${free > 1 ? 's' : ''}, ${booked} réservé${booked > 1 ? 's' : ''}`);
    if (!slots.length) {
      fill(box, el('p', { class: 'muted' }, 'Aucun créneau publié pour les 7 prochains jours.'));
      return;
    }
    const byDay = new Map();
    for (const s of slots) {
      const day = parts(s.start).date;
      if (!byDay.has(day)) byDay.set(day, []);
      byDay.get(day).push(s);
    }
    if (!openDays.size && !daysTouched) openDays.add([...byDay.keys()][0]);
    fill(box, [...byDay].map(([day, list]) => {
      const nFree = list.filter((s) => s.status === 'free').length;
      const nBooked = list.filter((s) => s.status === 'booked').length;
      const d = el('details', {
        class: 'day', open: openDays.has(day), dataset: { day },
        ontoggle: (ev) => {
          daysTouched = true;
          if (ev.currentTarget.open) openDays.add(day);
          else openDays.delete(day);
        },
      },
        el('summary', {}, el('span', { class: 'day-title' }, fmtDay(`${day}T00:00`)),
          el('span', { class: 'muted small' }, ` · ${list.length} créneau${list.length > 1 ? 'x' : ''}, ${nFree} libre${nFree > 1 ? 's' : ''}, ${nBooked} réservé${nBooked > 1 ? 's' : ''}`)),
        el('ul', { class: 'list' }, list.map(slotItem)));
      return d;
    }), truncated ? el('p', { class: 'muted' }, 'Liste tronquée : seuls les 1000 premiers créneaux sont affichés.') : null);
  }

  function slotItem(s) {
    const actions = s.status === 'free'
      ? el('button', {
        type: 'button', class: 'small danger', dataset: { withdraw: s.slot_id },
        'aria-label': `Retirer le créneau de ${fmtTime(s.start)}`,
        onclick: (ev) => withdraw(ev.currentTarget, s),
      }, 'Retirer')
      : null;
    return el('li', { class: 'slot', dataset: { slot: s.slot_id } },
      el('div', {},
        el('div', { class: 'row' },
          el('strong', { class: 'nowrap' }, `${fmtTime(s.start)}–${fmtTime(s.end)}`),
          el('span', { class: `badge ${s.status}` }, label('slot_status', s.status))),
        el('div', { class: 'small muted' }, `${label('mode', s.mode)} · ${s.site.name}`)),
      actions);
  }

  // Two steps without a dialog: the first click asks for confirmation.
  async function withdraw(button, s) {
    if (button.dataset.confirm !== 'yes') {
      button.dataset.confirm = 'yes';
      button.textContent = 'Confirmer le retrait';
      setTimeout(() => {
        if (button.isConnected && button.dataset.confirm === 'yes') {
          button.dataset.confirm = '';
          button.textContent = 'Retirer';
        }
      }, 6000);
      return;
    }
    await busy(button, async () => {
      try {
        await client.call('slot.withdraw', { slot_ids: [s.slot_id] });
        toast(`Créneau de ${fmtShort(s.start)} retiré.`, 'ok');
      } catch (e) {
        toast(e.code === 'conflict'
          ? 'Ce créneau vient d’être proposé ou réservé : il ne peut plus être retiré.'
          : errorText(e), 'error');
      }
    });
    await loadSlots();
  }

  // --- Bookings ----------------------------------------------------------------------

  async function loadBookings() {
    const now = client.now();
    try {
      const res = await client.call('booking.list', {
        from: new Date(now - 3 * 86400e3).toISOString().replace(/\.\d+Z$/, 'Z'),
        to: new Date(now + 8 * 86400e3).toISOString().replace(/\.\d+Z$/, 'Z'),
        limit: 1000,
      });
      // Bookings known only from a push (missing from booking.list, see the
      // booking.created handler) are kept.
      const partial = [...bookings.values()].filter((b) => b.partial);
      bookings.clear();
      for (const b of partial) bookings.set(b.booking_id, b);
      for (const b of res.bookings) {
        bookings.set(b.booking_id, b);
        learnSite(b.slot.site);
      }
      renderBookings();
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  function renderBookings() {
    renderBookingList(bookings, $('#bookings-count'), $('#bookings-list'),
      'Aucun rendez-vous pour l’instant.', bookingItem);
  }

  function bookingItem(b) {
    const p = b.patient;
    const age = ageOf(p, client.now());
    const src = b.source || {};
    const started = Date.parse(b.slot.start) <= client.now();
    const cls = [fresh.has(b.booking_id) ? 'new' : '', b.status === 'cancelled' ? 'cancelled' : ''].join(' ').trim();
    return el('li', { class: cls || null, dataset: { booking: b.booking_id } },
      el('div', { class: 'row' },
        el('strong', {}, fmtShort(b.slot.start)),
        el('span', { class: `badge ${b.status === 'booked' ? 'booked' : 'cancelled'}` }, label('booking_status', b.status)),
        fresh.has(b.booking_id) ? el('span', { class: 'badge free' }, 'Nouveau') : null,
        el('span', { class: 'small' }, `${label('mode', b.slot.mode)} · ${b.slot.site.name}`)),
      el('dl', { class: 'kv' },
        el('dt', {}, 'Patient'),
        b.partial ? el('dd', { class: 'patient' }, 'Détails du patient non transmis par le serveur : contactez le demandeur.') :
        el('dd', { class: 'patient' }, patientName(p),
          p ? ` · ${label('sex', p.sex)}` : '',
          age != null ? ` · ${age} ans` : '',
          p && p.phone ? [' · ', el('a', { href: `tel:${p.phone.replace(/[^0-9+]/g, '')}` }, p.phone)] : ''),
        p ? [el('dt', {}, 'Commune'), el('dd', {}, siteCommune({ commune_insee: p.commune_insee }, communes))] : null,
        p ? [el('dt', {}, 'Médecin traitant'), el('dd', {}, p.has_mt ? `oui${p.mt_rpps ? ` (RPPS ${p.mt_rpps})` : ''}` : 'non ou inconnu')] : null,
        b.priority_groups.length ? [el('dt', {}, 'Priorité'), el('dd', {}, b.priority_groups.map((g) => label('priority_group', g)).join(', '))] : null,
        el('dt', {}, 'Motif'),
        el('dd', {}, label('motif', b.motif.code), b.motif.text ? ` : ${b.motif.text}` : '', ` (${label('urgency', b.urgency).toLowerCase()})`),
        el('dt', {}, 'Adressé par'),
        el('dd', {}, b.requester.name || '', ` (${label('role', b.requester.kind)})`,
          b.requester.phone ? [' · ', el('a', { href: `tel:${b.requester.phone.replace(/[^0-9+]/g, '')}` }, b.requester.phone)] : ''),
        src.pharmacy ? [el('dt', {}, 'Pharmacie'), el('dd', {},
          `${label('pharmacy_protocol', src.pharmacy.protocol)}, test ${label('test_result', src.pharmacy.test_result).toLowerCase()}`,
          src.pharmacy.exclusions ? `, exclusions : ${src.pharmacy.exclusions.map((x) => label('pharmacy_exclusion', x).toLowerCase()).join(', ')}` : '')] : null,
        src.emergency ? [el('dt', {}, 'Urgences'), el('dd', {},
          `tri ${src.emergency.triage_level}, senior RPPS ${src.emergency.senior_rpps}`)] : null,
        src.sas ? [el('dt', {}, 'Régulation'), el('dd', {}, src.sas.regulator_name)] : null,
        b.outcome ? [el('dt', {}, 'Issue'), el('dd', {}, label('outcome', b.outcome.kind))] : null,
        b.mt_summary ? [el('dt', {}, 'Compte rendu'), el('dd', {}, summaryText(b.mt_summary))] : null,
        b.cancellation ? [el('dt', {}, 'Annulation'), el('dd', {},
          `${label('cancel_reason', b.cancellation.reason)} (${label('role', b.cancellation.cancelled_by).toLowerCase()})`)] : null),
      b.status === 'booked' ? outcomeForm(b, started) : null,
      b.status === 'booked' && !started ? cancelForm(b) : null,
      b.status === 'booked' && b.outcome && SEEN.includes(b.outcome.kind) && p && !p.has_mt ? handoverBox(b) : null);
  }

  // --- Referral to a GP taking new patients (booking.mt_handover, protocol 1.6.0) ----
  // After an outcome of a patient seen who has no médecin traitant, with the
  // patient's agreement, confirmed in place: snpd names the territory's GP
  // taking new patients who has had the fewest referrals, and sends them the
  // patient and the consultation by secure messaging.  booking.list names
  // that GP afterwards (referred_to).

  const SEEN = ['attended', 'redirected_emergency', 'hospitalised'];
  const doctor = (p) => `Dr ${p.given_name} ${p.family_name}`;

  // The summary snpd sends the patient's médecin traitant after the outcome
  // (booking.list's mt_summary, protocol 1.6.0).
  function summaryText(m) {
    const to = doctor(m.practitioner);
    if (m.state === 'sent') return `envoyé au ${to}, médecin traitant, par messagerie sécurisée`;
    if (m.state === 'dead') return `non remis au ${to}, médecin traitant : prévenez-le vous-même`;
    return `en attente d’envoi au ${to}, médecin traitant`;
  }

  function handoverBox(b) {
    const box = el('div', { class: 'handover no-print', dataset: { handover: b.booking_id } });
    const done = b.referred_to;
    if (done) {
      fill(box, el('p', { class: 'message ok small', id: `handover-${b.booking_id}-done` },
        el('strong', {}, `Adressé au ${doctor(done)}`), ', qui prend de nouveaux patients : dites-le au patient.'));
    } else {
      showHandover(box, b);
    }
    return box;
  }

  function showHandover(box, b, error) {
    const button = el('button', {
      type: 'button', class: 'small', 'data-handover': b.booking_id,
      onclick: () => askHandover(box, b),
    }, 'Adresser à un médecin traitant', el('span', { class: 'sr-only' }, ` : ${patientName(b.patient)}`));
    fill(box,
      el('p', { class: 'small muted' }, 'Ce patient n’a pas de médecin traitant : avec son accord, adressez-le à un médecin du territoire qui prend de nouveaux patients.'),
      button,
      error ? el('div', { class: 'message error small', role: 'alert' }, error) : null);
    return button;
  }

  function askHandover(box, b) {
    askInline(box, {
      label: `Adresser ${patientName(b.patient)} à un médecin traitant`,
      question: [el('strong', {}, 'Le patient accepte d’être adressé à un médecin qui prend de nouveaux patients.'),
        ' Ce médecin recevra par messagerie sécurisée son nom, sa date ou son année de naissance, son téléphone et cette consultation.'],
      confirm: 'Le patient accepte : adresser',
      key: ['handover', b.booking_id],
      tone: 'primary',
      onConfirm: (button) => busy(button, async () => {
        try {
          const res = await client.call('booking.mt_handover', { booking_id: b.booking_id });
          b.referred_to = res.practitioner;
          toast(`Patient adressé au ${doctor(res.practitioner)}.`, 'ok');
          const item = handoverBox(b);
          box.replaceWith(item);
          item.querySelector('p').setAttribute('tabindex', '-1');
          item.querySelector('p').focus();
        } catch (e) {
          showHandover(box, b, errorWithReason(e, { conflict: 'Ce patient ne peut pas être adressé.' })).focus();
        }
      }),
      onCancel: () => showHandover(box, b).focus(),
    });
  }

  function outcomeForm(b, started) {
    const id = `outcome-${b.booking_id}`;
    const kinds = started ? Object.keys(LABELS.outcome) : ['cancelled_by_patient'];
    const select = el('select', { id }, kinds.map((k) =>
      el('option', { value: k, selected: b.outcome && b.outcome.kind === k }, label('outcome', k))));
    return el('div', { class: 'row no-print' },
      el('label', { for: id, class: 'small' }, b.outcome ? 'Corriger l’issue' : 'Issue du rendez-vous'),
      el('div', { class: 'row' }, select,
        el('button', {
          type: 'button', class: 'small',
          onclick: (ev) => busy(ev.currentTarget, async () => {
            try {
              await client.call('outcome.report', { booking_id: b.booking_id, outcome: select.value });
              toast(`Issue enregistrée : ${label('outcome', select.value)}.`, 'ok');
              // Read again: the answer may lack the patient (see loadBookings).
              await loadBookings();
            } catch (e) {
              toast(e.code === 'too_late'
                ? 'L’issue se déclare à partir de l’heure du rendez-vous et jusqu’à quelques jours après.'
                : errorText(e), 'error');
            }
          }),
        }, 'Enregistrer')),
      started ? null : el('span', { class: 'hint' }, `Les autres issues pourront être déclarées à partir de ${fmtTime(b.slot.start)}.`));
  }

  function cancelForm(b) {
    const id = `cancel-${b.booking_id}`;
    const select = el('select', { id }, ['practitioner_unavailable', 'patient_request', 'duplicate', 'other']
      .map((r) => el('option', { value: r }, label('cancel_reason', r))));
    return el('details', { class: 'no-print' },
      el('summary', {}, 'Annuler ce rendez-vous'),
      el('p', { class: 'small muted' }, 'Le demandeur est prévenu et le patient se voit proposer un autre créneau.'),
      el('label', { for: id }, 'Raison'), select,
      el('div', { class: 'row' }, el('button', {
        type: 'button', class: 'danger small',
        onclick: (ev) => busy(ev.currentTarget, async () => {
          try {
            await client.call('booking.cancel', { booking_id: b.booking_id, reason: select.value });
            toast('Rendez-vous annulé.', 'ok');
            await loadBookings();
            loadSlots();
          } catch (e) {
            toast(errorText(e), 'error');
          }
        }),
      }, 'Confirmer l’annulation')));
  }

  // --- Participation (participation.get / .attestation, protocol 1.4.0) ------------------
  // The weeks of a calendar year, the supplements used out of the weekly cap
  // (counted over every territory) and each booking's reasons; the yearly
  // attestation downloaded as snpd writes it.

  const yearSelect = $('#participation-year');
  const thisYear = new Date().getFullYear();
  fill(yearSelect, [thisYear, thisYear - 1].map((y) => el('option', { value: String(y) }, String(y))));
  const fmtHours = (h) => `${h.toLocaleString('fr-FR', { maximumFractionDigits: 2 })} h`;

  let participationAsked = 0; // the latest read: an earlier answer arriving late is dropped
  async function loadParticipation() {
    showError($('#participation-error'), null);
    const asked = ++participationAsked;
    try {
      const p = await client.call('participation.get', { year: Number(yearSelect.value) });
      if (asked !== participationAsked) return;
      const t = p.totals;
      fill($('#participation-summary'),
        el('p', {}, el('strong', {}, `${t.weeks_open_2h} semaine${t.weeks_open_2h > 1 ? 's' : ''} sur ${t.weeks}`),
          ' avec au moins 2 h ouvertes · ', el('strong', {}, fmtHours(t.hours)), ' en tout · ',
          el('strong', { id: 'participation-supplements' }, String(t.supplements)),
          ` supplément${t.supplements > 1 ? 's' : ''} (${t.eligible} rendez-vous remplissant les conditions)`),
        p.preconditions.length ? el('p', { class: 'small' }, p.preconditions.map((c) =>
          `${label('precondition_kind', c.kind)} depuis le ${c.valid_from}${c.valid_to ? ` jusqu’au ${c.valid_to}` : ''}`).join(' · '))
          : el('p', { class: 'message warn' }, 'Aucune inscription au SAS ni adhésion à la CPTS enregistrée : demandez-la à la coordination, sans quoi aucun supplément n’est compté.'));
      const weeks = p.weeks.filter((w) => w.slots > 0 || w.eligible > 0);
      fill($('#participation-weeks'), weeks.length
        ? el('table', { class: 'table' },
          el('thead', {}, el('tr', {}, ['Semaine', 'Créneaux', 'Heures', '2 h', `Suppléments / ${p.weekly_cap}`].map((h) => el('th', {}, h)))),
          el('tbody', {}, weeks.map((w) => el('tr', {},
            el('td', {}, `${w.iso_week} (lundi ${w.monday})`), el('td', {}, String(w.slots)), el('td', {}, fmtHours(w.hours)),
            el('td', {}, w.open_2h ? 'oui' : 'non'), el('td', {}, `${w.supplements} / ${p.weekly_cap}`)))))
        : el('p', { class: 'muted' }, 'Aucun créneau cette année.'));
      fill($('#participation-bookings'), p.bookings.length ? p.bookings.map((b) => el('li', {},
        el('strong', {}, fmtShort(b.start)), ` · rendez-vous n° ${b.booking_id} · `,
        b.qualifies ? el('span', { class: 'badge booked' }, 'supplément')
          : el('span', {}, `pas de supplément : ${b.reasons.map((r) => label('supplement_reason', r)).join(' ; ')}`)))
        : el('li', { class: 'muted' }, 'Aucun rendez-vous cette année.'));
    } catch (e) {
      if (asked === participationAsked) showError($('#participation-error'), e);
    }
  }

  for (const button of [$('#attestation-html'), $('#attestation-csv')]) {
    button.addEventListener('click', () => busy(button, async () => {
      showError($('#participation-error'), null);
      try {
        const res = await client.call('participation.attestation',
          { year: Number(yearSelect.value), format: button.dataset.format });
        saveFile(res);
      } catch (e) {
        showError($('#participation-error'), e);
      }
    }));
  }
  yearSelect.addEventListener('change', loadParticipation);

  // --- My shifts (shift.list as gp, protocol 1.5.0) ---------------------------------------
  // The CSNP shifts the coordination named this GP on duty for over the next
  // 14 days; their bookings come with the GP's own (booking.created).

  const SHIFT_DAYS = 14;
  let shiftsAsked = 0; // the latest read: an earlier answer arriving late is dropped
  async function loadShifts() {
    const asked = ++shiftsAsked;
    const from = zonedParts(client.now(), tz).date;
    try {
      const res = await client.call('shift.list', { from, to: addDays(from, SHIFT_DAYS - 1) });
      if (asked !== shiftsAsked) return;
      fill($('#shifts-list'), res.shifts.length ? res.shifts.map((sh) => el('li', { dataset: { shift: sh.shift_id } },
        el('strong', { class: 'cap' }, shiftTitle(sh)),
        el('div', { class: 'small' }, sh.site_name),
        el('div', { class: 'small' }, shiftSlots(sh)),
        el('div', { class: 'small muted' }, `Votre statut sur cette garde : ${sh.duty_status ? label('duty_status', sh.duty_status).toLowerCase() : 'non renseigné'}`)))
        : el('li', { class: 'muted' }, 'Aucune garde dans les 14 prochains jours.'));
    } catch (e) {
      if (asked === shiftsAsked) fill($('#shifts-list'), el('li', { class: 'message error' }, errorText(e)));
    }
  }

  // --- Live updates -------------------------------------------------------------------

  // The push announces the booking; the page then reads it with
  // booking.list, which gives the patient and the requester in full (snpd's
  // push omits them: see the report on issue 5).  The push's own copy is
  // shown only if that read fails.
  client.on('booking.created', async (b) => {
    fresh.add(b.booking_id);
    await loadBookings();
    if (!bookings.has(b.booking_id)) {
      bookings.set(b.booking_id, { ...b, partial: !b.patient });
      renderBookings();
    }
    const full = bookings.get(b.booking_id);
    toast(`Nouveau rendez-vous : ${full.partial ? 'patient non transmis' : patientName(full.patient)}, ${fmtShort(full.slot.start)}` +
      ` (${full.requester.name || label('role', full.requester.kind)}).`, 'ok');
    loadSlots();
    // A booking handed over with a shift the GP was just named on duty for.
    loadShifts();
  });
  client.on('booking.cancelled', async (b) => {
    await loadBookings();
    if (!bookings.has(b.booking_id)) {
      bookings.set(b.booking_id, b);
      renderBookings();
    }
    toast(`Rendez-vous de ${fmtShort(b.slot.start)} annulé (${label('cancel_reason', b.cancellation ? b.cancellation.reason : 'other').toLowerCase()}).`);
    loadSlots();
  });
  // A booking of a CSNP shift given to another practitioner on duty (or the
  // shift freed): it leaves this page.
  client.on('booking.handed_over', async (b) => {
    await loadBookings();
    const now = b.slot.practitioner;
    toast(`Le rendez-vous de ${fmtShort(b.slot.start)} (${b.slot.site.name}) ne vous est plus confié` +
      (now ? ` : Dr ${now.given_name} ${now.family_name} est de garde.` : ' : la garde n’a plus de médecin nommé.'));
    loadSlots();
    loadShifts();
  });
  client.on('resync', () => {
    loadSlots();
    loadBookings();
    loadShifts();
  });
  // Without the WebSocket, poll every 30 s.  With it, still read again every
  // 2 minutes: snpd does not push booking.cancelled when a requester cancels
  // a booked request or records a refused redirection (see the report on
  // issue 5), and a GP must not keep a cancelled appointment on screen.
  let lastLoad = Date.now();
  setInterval(() => {
    if (client.status !== 'online' || Date.now() - lastLoad >= 120000) {
      lastLoad = Date.now();
      loadSlots();
      loadBookings();
      loadShifts();
    }
  }, 30000);
  // The presets depend on the time of day.
  setInterval(renderPresets, 60000);

  renderSites();
  renderPresets();
  client.subscribe(['bookings']).catch((e) => toast(errorText(e), 'error'));
  loadSlots();
  loadBookings();
  loadShifts();
  loadParticipation();
}
