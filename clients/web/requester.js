// requester.js: the requester's flow, shared by request.html (pharmacy,
// emergency, professional, desk, sas) and the SAS board (booking on behalf
// of a patient): the patient form, the offer with its hold countdown and
// alternatives, accept / decline, the live updates of the "requests" topic,
// the patient's printable confirmation (every requester), the redirection
// slip (emergency) and the list of the organisation's requests.
import {
  $, el, fill, label, LABELS, errorText, errorWithReason, toast, showError, busy, prefs, isRpps,
  fmtLong, fmtShort, fmtDeadline, zonedParts, fmtCountdown, patientName, practitionerName, siteCommune, ageOf,
} from './app.js';
import { renderConfirmation } from './confirmation.js';
import { SETTING_BOUNDS } from './bounds.js';

const REQUESTER_ROLES = ['pharmacy', 'emergency', 'sas', 'professional', 'desk'];

/**
 * Mounts the flow: the form into FORMBOX, the current request into OFFERBOX
 * and, when LISTBOX is given, the organisation's requests into it.  While a
 * request is shown, FORMHIDE (the form's card, FORMBOX by default) is hidden,
 * so that the same patient is not sent twice by mistake.  CTX is what
 * startPage resolved with.  Returns {reset(), show(request)}.
 */
export function mountRequester(ctx, formBox, offerBox, listBox, formHide = formBox) {
  const { client, session, territory } = ctx;
  if (!REQUESTER_ROLES.includes(session.role)) return null;
  const role = session.role;
  const communes = [...((territory && territory.communes) || [])]
    .sort((a, b) => a.name.localeCompare(b.name, 'fr'));
  const holdSeconds = (territory && territory.settings && territory.settings.hold_seconds)
    || SETTING_BOUNDS.hold_seconds.default;
  const tz = (territory && territory.time_zone) || 'Europe/Paris';
  const deadline = (request) => fmtDeadline(request.deadline, zonedParts(client.now(), tz).date);
  const pk = (k) => `req.${session.organisation_id || role}.${k}`;

  let current = null; // the request shown in OFFERBOX
  // The last offer seen for each request, with its alternatives and
  // distances: request.get answers an offer without them.
  const offers = new Map();
  let lastPayload = null; // JSON of the last creation attempt, for retries
  let clientRef = null;
  let timer = null;
  let announcedMinute = false;

  // --- Form -----------------------------------------------------------------------

  const radios = (name, kind, values, checked) => el('div', { class: 'choices' },
    values.map((v) => el('label', { class: 'choice' },
      el('input', { type: 'radio', name, value: v, checked: v === checked }), label(kind, v))));
  const checks = (name, kind, values, checked = [], compact = false) => el('div', { class: compact ? 'choices compact' : 'choices' },
    values.map((v) => el('label', { class: 'choice' },
      el('input', { type: 'checkbox', name, value: v, checked: checked.includes(v) }), label(kind, v))));
  const field = (id, text, input, hint) => el('div', { class: 'field' },
    el('label', { for: id }, text, hint ? el('span', { class: 'hint', id: `${id}-hint` }, hint) : null), input);

  // The commune last chosen on this browser, else the organisation's own
  // (session.organisation_commune_insee, protocol 1.2.0), else the first.
  const own = communes.find((c) => c.insee === session.organisation_commune_insee);
  const lastCommune = prefs.get(pk('commune'), own ? own.insee : (communes.length ? communes[0].insee : ''));
  const form = el('form', { id: 'rq-form', novalidate: true, 'aria-describedby': 'rq-error' },
    el('fieldset', {},
      el('legend', {}, 'Patient'),
      el('div', { class: 'cols c2' },
        field('rq-name', 'Nom et prénom', el('input', {
          type: 'text', id: 'rq-name', name: 'name', autocomplete: 'off', maxlength: 100, required: true,
        })),
        field('rq-birth', 'Année ou date de naissance', el('input', {
          type: 'text', id: 'rq-birth', name: 'birth', autocomplete: 'off', required: true,
          'aria-describedby': 'rq-birth-hint', placeholder: '1951 ou 17/05/1990',
        }), 'Année seule (1951) ou date (17/05/1990)')),
      el('div', { class: 'field' },
        el('label', { class: 'choice' }, el('input', { type: 'checkbox', id: 'rq-initials', name: 'initials' }),
          'Initiales seulement')),
      el('fieldset', { class: 'plain', id: 'rq-sex' }, el('legend', {}, 'Sexe'),
        radios('sex', 'sex', ['female', 'male', 'unspecified'], null)),
      el('div', { class: 'cols c2' },
        field('rq-commune', 'Commune où se trouve le patient', el('select', { id: 'rq-commune', name: 'commune', required: true },
          communes.map((c) => el('option', { value: c.insee, selected: c.insee === lastCommune },
            c.postal_code ? `${c.name} (${c.postal_code})` : c.name)))),
        field('rq-phone', 'Téléphone du patient', el('input', {
          type: 'tel', id: 'rq-phone', name: 'phone', autocomplete: 'off', 'aria-describedby': 'rq-phone-hint',
        }), 'Facultatif : pour que le cabinet puisse le joindre')),
      el('div', { class: 'choices' },
        el('label', { class: 'choice' }, el('input', { type: 'checkbox', id: 'rq-has-mt', name: 'has_mt' }), 'A un médecin traitant'),
        el('label', { class: 'choice' }, el('input', { type: 'checkbox', id: 'rq-ald', name: 'ald' }), 'ALD'),
        el('label', { class: 'choice' }, el('input', { type: 'checkbox', id: 'rq-c2s', name: 'c2s' }), 'C2S')),
      el('div', { class: 'field', id: 'rq-mt-field', hidden: true },
        el('label', { for: 'rq-mt' }, 'RPPS du médecin traitant',
          el('span', { class: 'hint', id: 'rq-mt-hint' }, 'Facultatif : ses propres créneaux sont proposés en premier')),
        el('input', { type: 'text', id: 'rq-mt', name: 'mt_rpps', inputmode: 'numeric', maxlength: 11, 'aria-describedby': 'rq-mt-hint' }))),
    el('fieldset', {},
      el('legend', {}, 'Motif'),
      field('rq-motif', 'Motif de consultation', el('select', { id: 'rq-motif', name: 'motif', required: true },
        el('option', { value: '' }, 'Choisir…'),
        Object.keys(LABELS.motif).map((m) => el('option', { value: m }, label('motif', m))))),
      field('rq-motif-text', 'Précisions pour le médecin', el('textarea', {
        id: 'rq-motif-text', name: 'motif_text', maxlength: 500, rows: 2, 'aria-describedby': 'rq-motif-text-hint',
      }), 'Facultatif, 500 caractères au plus'),
      el('fieldset', { class: 'plain' }, el('legend', {}, 'Délai'),
        radios('urgency', 'urgency', ['same_day', '24h', '48h'], 'same_day'))),
    el('fieldset', {},
      el('legend', {}, 'Ce que le patient peut accepter'),
      el('fieldset', { class: 'plain' }, el('legend', { class: 'small' }, 'Modes de consultation'),
        checks('modes', 'mode', ['office', 'home', 'teleconsultation'], prefs.get(pk('modes'), ['office']))),
      el('div', { class: 'cols c2' },
        field('rq-distance', 'Distance maximale', el('select', { id: 'rq-distance', name: 'distance' },
          [['5', '5 km'], ['10', '10 km'], ['20', '20 km'], ['30', '30 km'], ['50', '50 km'], ['', 'Sans limite']]
            .map(([v, t]) => el('option', { value: v, selected: v === String(prefs.get(pk('distance'), '20')) }, t)))),
        el('div', { class: 'field' }, el('label', { class: 'choice' },
          el('input', { type: 'checkbox', id: 'rq-mobility', name: 'reduced_mobility' }), 'Mobilité réduite')))),
    role === 'pharmacy' ? el('fieldset', { id: 'rq-pharmacy' },
      el('legend', {}, 'Protocole en pharmacie'),
      el('fieldset', { class: 'plain' }, el('legend', { class: 'small' }, 'Protocole suivi'),
        radios('protocol', 'pharmacy_protocol', ['sore_throat', 'cystitis', 'other'], 'sore_throat')),
      el('fieldset', { class: 'plain' }, el('legend', { class: 'small' }, 'Résultat du test rapide'),
        radios('test_result', 'test_result', ['positive', 'negative', 'not_done'], 'not_done')),
      el('fieldset', { class: 'plain' }, el('legend', { class: 'small' }, 'Critères d’exclusion constatés'),
        checks('exclusions', 'pharmacy_exclusion', Object.keys(LABELS.pharmacy_exclusion), [], true))) : null,
    role === 'emergency' ? el('fieldset', { id: 'rq-emergency' },
      el('legend', {}, 'Réorientation après tri'),
      el('div', { class: 'cols c2' },
        field('rq-triage', 'Niveau de tri', el('select', { id: 'rq-triage', name: 'triage', required: true },
          el('option', { value: '' }, 'Choisir…'),
          [1, 2, 3, 4, 5].map((n) => el('option', { value: n }, `${n}${n === 1 ? ' (le plus urgent)' : n === 5 ? ' (le moins urgent)' : ''}`)))),
        field('rq-senior', 'RPPS du médecin senior', el('input', {
          type: 'text', id: 'rq-senior', name: 'senior', inputmode: 'numeric', maxlength: 11, required: true,
          value: prefs.get(pk('senior'), ''), 'aria-describedby': 'rq-senior-hint',
        }), 'Le médecin qui décide la réorientation (11 chiffres)'))) : null,
    role === 'sas' ? el('fieldset', { id: 'rq-sas' },
      el('legend', {}, 'Régulation'),
      el('div', { class: 'cols c2' },
        field('rq-regulator', 'Nom du régulateur', el('input', {
          type: 'text', id: 'rq-regulator', name: 'regulator', required: true, maxlength: 100,
          value: prefs.get(pk('regulator'), ''),
        })),
        field('rq-regulator-id', 'RPPS ou identifiant', el('input', {
          type: 'text', id: 'rq-regulator-id', name: 'regulator_id', maxlength: 64,
          value: prefs.get(pk('regulator_id'), ''), 'aria-describedby': 'rq-regulator-id-hint',
        }), 'Facultatif'))) : null,
    el('div', { class: 'message error', id: 'rq-error', role: 'alert', hidden: true }),
    el('button', { type: 'submit', class: 'primary big', id: 'rq-submit' }, 'Trouver un créneau'));

  fill(formBox, form);
  const q = (sel) => form.querySelector(sel);
  q('#rq-has-mt').addEventListener('change', (ev) => { $('#rq-mt-field').hidden = !ev.target.checked; });
  q('#rq-initials').addEventListener('change', (ev) => {
    q('label[for="rq-name"]').firstChild.textContent = ev.target.checked ? 'Initiales' : 'Nom et prénom';
    q('#rq-name').maxLength = ev.target.checked ? 8 : 100;
  });

  // Returns the request.create data, or throws [message, element] when a field is wrong.
  function readForm() {
    const value = (sel) => q(sel).value.trim();
    const wrong = (msg, sel) => { throw [msg, q(sel)]; };
    const patient = {};
    const name = value('#rq-name');
    if (!name) wrong('Indiquez le nom du patient (ou ses initiales).', '#rq-name');
    if (q('#rq-initials').checked) {
      if (name.length > 8) wrong('Les initiales comptent 8 caractères au plus.', '#rq-name');
      patient.initials = name;
    } else {
      patient.display_name = name;
    }
    const birth = value('#rq-birth');
    let m;
    const year = new Date(client.now()).getFullYear();
    if (/^\d{4}$/.test(birth)) {
      const y = Number(birth);
      if (y < 1900 || y > year) wrong('L’année de naissance doit être comprise entre 1900 et cette année.', '#rq-birth');
      patient.birth_year = y;
    } else if ((m = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$/.exec(birth)) || (m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(birth))) {
      const [d, mo, y] = m[1].length === 4 ? [m[3], m[2], m[1]] : [m[1], m[2], m[3]];
      const iso = `${y}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
      const t = new Date(`${iso}T12:00:00Z`);
      if (Number.isNaN(t.getTime()) || t.toISOString().slice(0, 10) !== iso || Number(y) < 1900 || t.getTime() > client.now()) {
        wrong('Cette date de naissance n’existe pas.', '#rq-birth');
      }
      patient.birth_date = iso;
    } else {
      wrong('Écrivez l’année (1951) ou la date de naissance (17/05/1990).', '#rq-birth');
    }
    const sex = q('input[name="sex"]:checked');
    if (!sex) wrong('Indiquez le sexe du patient.', 'input[name="sex"]');
    patient.sex = sex.value;
    const phone = value('#rq-phone');
    if (phone) {
      if (!/^(\+33\s?[1-9]|0[1-9])([\s.]?\d{2}){4}$/.test(phone)) wrong('Numéro de téléphone non reconnu (ex. 06 12 34 56 78).', '#rq-phone');
      patient.phone = phone;
    }
    patient.commune_insee = value('#rq-commune');
    if (!patient.commune_insee) wrong('Choisissez la commune.', '#rq-commune');
    patient.has_mt = q('#rq-has-mt').checked;
    const mt = value('#rq-mt');
    if (patient.has_mt && mt) {
      if (!isRpps(mt)) wrong('Le RPPS du médecin traitant n’est pas valide (11 chiffres).', '#rq-mt');
      patient.mt_rpps = mt;
    }
    if (q('#rq-ald').checked) patient.ald = true;
    if (q('#rq-c2s').checked) patient.c2s = true;

    const motif = { code: value('#rq-motif') };
    if (!motif.code) wrong('Choisissez le motif.', '#rq-motif');
    const text = value('#rq-motif-text');
    if (text) motif.text = text;

    const data = {
      patient, motif,
      urgency: q('input[name="urgency"]:checked').value,
    };
    const constraints = {};
    const modes = [...form.querySelectorAll('input[name="modes"]:checked')].map((b) => b.value);
    if (!modes.length) wrong('Cochez au moins un mode de consultation.', 'input[name="modes"]');
    if (modes.length < 3) constraints.modes = modes;
    const distance = value('#rq-distance');
    if (distance) constraints.max_distance_km = Number(distance);
    if (q('#rq-mobility').checked) constraints.reduced_mobility = true;
    if (Object.keys(constraints).length) data.constraints = constraints;

    if (role === 'pharmacy') {
      const pharmacy = {
        protocol: q('input[name="protocol"]:checked').value,
        test_result: q('input[name="test_result"]:checked').value,
      };
      const ex = [...form.querySelectorAll('input[name="exclusions"]:checked')].map((b) => b.value);
      if (ex.length) pharmacy.exclusions = ex;
      data.source = { pharmacy };
    } else if (role === 'emergency') {
      const triage = value('#rq-triage');
      if (!triage) wrong('Indiquez le niveau de tri.', '#rq-triage');
      const senior = value('#rq-senior');
      if (!isRpps(senior)) wrong('Le RPPS du médecin senior n’est pas valide (11 chiffres).', '#rq-senior');
      data.source = { emergency: { triage_level: Number(triage), senior_rpps: senior } };
    } else if (role === 'sas') {
      const name2 = value('#rq-regulator');
      if (!name2) wrong('Indiquez le nom du régulateur.', '#rq-regulator');
      const sas = { regulator_name: name2 };
      const rid = value('#rq-regulator-id');
      if (rid) sas.regulator_id = rid;
      data.source = { sas };
    }
    return data;
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const errorBox = q('#rq-error');
    for (const x of form.querySelectorAll('[aria-invalid]')) x.removeAttribute('aria-invalid');
    let data;
    try {
      data = readForm();
    } catch (e) {
      if (!Array.isArray(e)) throw e;
      const [msg, node] = e;
      showError(errorBox, msg);
      if (node) {
        node.setAttribute('aria-invalid', 'true');
        node.focus();
      }
      return;
    }
    showError(errorBox, null);
    // The same content keeps its client_ref, so that a retry after a lost
    // answer returns the request created the first time.
    const payload = JSON.stringify(data);
    if (payload !== lastPayload || !clientRef) {
      const stamp = new Date(client.now()).toISOString().replace(/[-:]/g, '').slice(0, 15);
      clientRef = `web-${role}-${session.organisation_id || 0}-${stamp}-${Math.random().toString(36).slice(2, 8)}`;
      lastPayload = payload;
    }
    prefs.set(pk('commune'), data.patient.commune_insee);
    prefs.set(pk('modes'), (data.constraints && data.constraints.modes) || ['office', 'home', 'teleconsultation']);
    prefs.set(pk('distance'), q('#rq-distance').value);
    if (role === 'emergency') prefs.set(pk('senior'), data.source.emergency.senior_rpps);
    if (role === 'sas') {
      prefs.set(pk('regulator'), data.source.sas.regulator_name);
      prefs.set(pk('regulator_id'), data.source.sas.regulator_id || '');
    }
    busy(q('#rq-submit'), async () => {
      try {
        const request = await client.call('request.create', { client_ref: clientRef, ...data });
        clientRef = null;
        lastPayload = null;
        show(await complete(request), true);
        refreshList();
      } catch (e) {
        if (e.code === 'conflict') clientRef = null;
        showError(errorBox, errorText(e));
        if (e.field) {
          const id = { 'patient.display_name': '#rq-name', 'patient.initials': '#rq-name', 'patient.birth_date': '#rq-birth',
            'patient.birth_year': '#rq-birth', 'patient.phone': '#rq-phone', 'patient.mt_rpps': '#rq-mt',
            'source.emergency.senior_rpps': '#rq-senior' }[e.field];
          if (id) q(id).setAttribute('aria-invalid', 'true');
        }
      }
    });
  });

  // --- The current request ------------------------------------------------------------

  function slotLines(slot) {
    const site = slot.site;
    return el('dl', { class: 'kv' },
      el('dt', {}, 'Médecin'), el('dd', {}, practitionerName(slot)),
      slot.mode === 'home' ? [el('dt', {}, 'Visite'), el('dd', {}, 'Le médecin se déplace au domicile du patient.')] : null,
      slot.mode === 'teleconsultation' ? [el('dt', {}, 'Visite'), el('dd', {}, 'Consultation à distance, par vidéo.')] : null,
      el('dt', {}, slot.mode === 'office' ? 'Lieu' : 'Cabinet'), el('dd', {}, site.name, el('br'), site.address,
        site.address.includes(siteCommune(site, communes)) ? '' : `, ${siteCommune(site, communes)}`),
      site.phone ? [el('dt', {}, 'Téléphone'), el('dd', {}, el('a', { href: `tel:${site.phone.replace(/[^0-9+]/g, '')}` }, site.phone))] : null,
      el('dt', {}, 'Mode'), el('dd', {}, label('mode', slot.mode), ` · ${slot.duration_min} min`),
      slot.distance_km != null ? [el('dt', {}, 'Distance'), el('dd', {}, `${String(Math.round(slot.distance_km * 10) / 10).replace('.', ',')} km`)] : null);
  }

  function stopTimer() {
    if (timer) clearInterval(timer);
    timer = null;
  }

  function show(request, focus) {
    if (request.offer) {
      const seen = offers.get(request.request_id);
      const same = seen && seen.slot.slot_id === request.offer.slot.slot_id;
      if (request.offer.alternatives && request.offer.alternatives.length) offers.set(request.request_id, request.offer);
      else if (same) request.offer = { ...seen, expires_at: request.offer.expires_at || seen.expires_at };
    }
    current = request;
    stopTimer();
    announcedMinute = false;
    const p = request.patient;
    const age = ageOf(p, client.now());
    const head = el('div', {},
      el('div', { class: 'row' },
        el('h2', { id: 'offer-title', tabindex: '-1' }, `Demande n° ${request.request_id}`),
        el('span', { class: `badge ${request.status}`, id: 'offer-status' }, label('request_status', request.status))),
      el('p', { class: 'small muted', id: 'offer-summary' }, p ? patientName(p) : '', age != null ? `, ${age} ans` : '',
        request.motif ? ` · ${label('motif', request.motif.code)}` : '',
        request.urgency ? ` · ${label('urgency', request.urgency).toLowerCase()}` : '',
        request.deadline ? ` · à voir ${deadline(request)}` : ''));
    let body;
    if (request.status === 'offered' && request.offer) body = offerView(request);
    else if (request.status === 'waiting') {
      body = el('div', {},
        el('p', { class: 'message warn' }, 'Aucun créneau ne convient pour l’instant. La demande reste en file d’attente ',
          `jusqu’à son échéance (${deadline(request)}) : un créneau vous sera proposé ici dès qu’il se libère (gardez la page ouverte).`),
        cancelRequestForm(request));
    } else if (request.status === 'booked') body = bookedView(request);
    else if (request.status === 'cancelled') {
      body = el('p', { class: 'message' }, 'Demande annulée',
        request.cancellation ? ` : ${label('cancel_reason', request.cancellation.reason).toLowerCase()}.` : '.');
    } else {
      body = el('p', { class: 'message' }, 'Le délai de la demande est dépassé sans rendez-vous.');
    }
    fill(offerBox, head, body,
      el('div', { class: 'row no-print' }, el('button', { type: 'button', id: 'rq-new', onclick: reset }, 'Nouvelle demande')));
    offerBox.hidden = false;
    formHide.hidden = true;
    if (focus) {
      offerBox.scrollIntoView({ block: 'start' });
      $('#offer-title').focus({ preventScroll: true });
    }
  }

  function offerView(request) {
    const offer = request.offer;
    const slot = offer.slot;
    const timeBox = el('span', { class: 'time', role: 'timer', id: 'countdown-time', 'aria-live': 'off' }, '');
    const bar = el('progress', { max: holdSeconds, value: holdSeconds, 'aria-label': 'Temps restant pour confirmer' });
    const countdown = el('div', { class: 'countdown', id: 'countdown' },
      el('span', {}, 'Réservé encore'), timeBox, bar);
    const expires = Date.parse(offer.expires_at);
    const tick = () => {
      const left = (expires - client.now()) / 1000;
      timeBox.textContent = fmtCountdown(left);
      bar.value = Math.max(0, Math.min(holdSeconds, left));
      countdown.classList.toggle('low', left < 30);
      if (left <= 60 && !announcedMinute) {
        announcedMinute = true;
        toast('Plus qu’une minute pour confirmer le créneau proposé.');
      }
      if (left <= 0) {
        stopTimer();
        fill(countdown, el('span', { role: 'status' }, 'Délai écoulé : recherche d’un autre créneau…'));
        setTimeout(() => reload(request.request_id), 1500);
      }
    };
    const alternatives = offer.alternatives || [];
    const view = el('div', {},
      el('div', { class: 'offer', id: 'offer' },
        el('p', { class: 'muted small' }, 'Créneau proposé, réservé pour ce patient pendant la confirmation :'),
        el('p', { class: 'when cap', id: 'offer-when' }, fmtLong(slot.start)),
        slotLines(slot),
        countdown,
        el('div', { class: 'row' },
          el('button', { type: 'button', class: 'primary big', id: 'offer-accept',
            onclick: (ev) => accept(ev.currentTarget, request, slot.slot_id) }, 'Le patient accepte : confirmer'),
        ),
        declineForm(request, slot)),
      alternatives.length ? el('div', {},
        el('h3', {}, 'Autres possibilités (non réservées)'),
        el('ul', { class: 'list alternatives', id: 'alternatives' }, alternatives.map((a) => el('li', {},
          el('div', { class: 'grow' }, el('strong', { class: 'cap' }, fmtLong(a.start)), el('br'),
            el('span', { class: 'small' }, `${practitionerName(a)} · ${a.site.name}, ${siteCommune(a.site, communes)} · ${label('mode', a.mode)}`,
              a.distance_km != null ? ` · ${String(Math.round(a.distance_km * 10) / 10).replace('.', ',')} km` : '')),
          el('button', { type: 'button', class: 'small', onclick: (ev) => accept(ev.currentTarget, request, a.slot_id) },
            'Choisir ce créneau'))))) : null,
      cancelRequestForm(request));
    tick();
    timer = setInterval(tick, 250);
    return view;
  }

  function declineForm(request, slot) {
    const select = el('select', { id: 'decline-reason' }, Object.keys(LABELS.decline_reason)
      .map((r) => el('option', { value: r }, label('decline_reason', r))));
    return el('details', { class: 'no-print' },
      el('summary', {}, 'Le patient refuse ce créneau'),
      el('div', { class: 'field' }, el('label', { for: 'decline-reason' }, 'Raison'), select),
      el('button', {
        type: 'button', class: 'danger', id: 'offer-decline',
        onclick: (ev) => busy(ev.currentTarget, async () => {
          try {
            const r = await client.call('offer.decline', { request_id: request.request_id, slot_id: slot.slot_id, reason: select.value });
            toast(r.status === 'offered' ? 'Créneau refusé : voici une autre proposition.' : 'Créneau refusé : la demande attend un autre créneau.');
            show(await complete(r), true);
            refreshList();
          } catch (e) {
            toast(errorText(e), 'error');
            reload(request.request_id);
          }
        }),
      }, 'Refuser et chercher un autre créneau'));
  }

  async function accept(button, request, slotId) {
    await busy(button, async () => {
      try {
        await client.call('offer.accept', { request_id: request.request_id, slot_id: slotId });
        toast('Rendez-vous confirmé. Le médecin est prévenu.', 'ok');
        await reload(request.request_id, true);
        refreshList();
      } catch (e) {
        toast(errorText(e), 'error');
        reload(request.request_id);
      }
    });
  }

  function bookedView(request) {
    const b = request.booking;
    const slot = b && b.slot;
    return el('div', {},
      el('div', { class: 'message ok', id: 'booked' },
        el('strong', {}, 'Rendez-vous confirmé'), slot ? el('span', { class: 'cap' }, ` : ${fmtLong(slot.start)}`) : '',
        b && b.status === 'cancelled' ? el('span', {}, ' — ce rendez-vous a depuis été annulé.') : null,
        b && b.outcome ? el('span', {}, ` — issue : ${label('outcome', b.outcome.kind).toLowerCase()}.`) : null),
      slot ? slotLines(slot) : null,
      el('p', { class: 'small' }, 'Dites au patient de se présenter à l’heure au lieu indiqué, et de prévenir le cabinet s’il ne peut pas venir.'),
      b && b.status === 'booked' ? confirmationActions(request) : null,
      role === 'emergency' && b && b.status === 'booked' ? slipActions(request) : null,
      b && b.status === 'booked' ? cancelRequestForm(request) : null);
  }

  function cancelRequestForm(request) {
    const select = el('select', { id: 'cancel-reason' }, ['patient_request', 'patient_seen_elsewhere', 'duplicate', 'entered_in_error', 'other']
      .map((r) => el('option', { value: r }, label('cancel_reason', r))));
    return el('details', { class: 'no-print' },
      el('summary', {}, request.status === 'booked' ? 'Annuler le rendez-vous' : 'Annuler la demande'),
      el('div', { class: 'field' }, el('label', { for: 'cancel-reason' }, 'Raison'), select),
      el('button', {
        type: 'button', class: 'danger',
        onclick: (ev) => busy(ev.currentTarget, async () => {
          try {
            const r = await client.call('request.cancel', { request_id: request.request_id, reason: select.value });
            toast('Demande annulée.', 'ok');
            show(await complete(r), true);
            refreshList();
          } catch (e) {
            toast(errorText(e), 'error');
          }
        }),
      }, 'Confirmer l’annulation'));
  }

  // --- Printed sheets: the confirmation, the redirection slip --------------------------

  // Shows the sheet RENDER(id) in PREVIEW (with id ID) and prints it alone:
  // a copy with id `${ID}-printed` goes into #print-box, the only child of
  // the body that the print style shows while body.print-sheet is set.
  function printSheet(render, preview, id) {
    fill(preview, render(id));
    let printBox = $('#print-box');
    if (!printBox) {
      printBox = el('div', { id: 'print-box' });
      document.body.append(printBox);
    }
    fill(printBox, render(`${id}-printed`));
    document.body.classList.add('print-sheet');
    window.addEventListener('afterprint', () => document.body.classList.remove('print-sheet'), { once: true });
    window.print();
  }

  function confirmationActions(request) {
    const preview = el('div', { id: 'confirmation-preview' });
    const sheet = { territory, communes, requester: session.organisation_name || null };
    const send = sendForm(request);
    const toggle = el('button', {
      type: 'button', id: 'send-confirmation-toggle', 'aria-expanded': 'false', 'aria-controls': send.id,
      onclick: () => {
        send.hidden = !send.hidden;
        toggle.setAttribute('aria-expanded', String(!send.hidden));
        if (!send.hidden) send.querySelector('input[name="send-channel"]:checked').focus();
      },
    }, 'Envoyer au patient');
    return el('div', { class: 'no-print' },
      el('div', { class: 'row' },
        el('button', { type: 'button', class: role === 'emergency' ? null : 'primary', id: 'confirmation-print-button',
          onclick: () => printSheet((id) => renderConfirmation(request, sheet, id), preview, 'confirmation') },
        'Imprimer la confirmation'),
        toggle),
      send,
      preview);
  }

  // The confirmation sent to the patient by SMS or e-mail (protocol 1.6.0,
  // request.confirmation.send), at the patient's demand.  The number or
  // address is typed for this one message: the page keeps it nowhere, and the
  // server erases it once the message is sent or given up.
  const FRENCH_MOBILE = /^(\+33\s?[67]|0[67])([\s.]?\d{2}){4}$/;
  const SEND_TO = {
    sms: {
      text: 'Numéro de portable du patient', type: 'tel', hint: 'Un portable : 06, 07, +33 6 ou +33 7',
      note: 'Ce numéro sert une seule fois, pour ce message : il n’est pas enregistré avec la demande et n’est plus affiché ensuite.',
    },
    email: {
      text: 'Adresse e-mail du patient', type: 'email', hint: 'Par exemple prenom.nom@exemple.fr',
      note: 'Cette adresse sert une seule fois, pour ce message : elle n’est pas enregistrée avec la demande et n’est plus affichée ensuite.',
    },
  };

  function sendForm(request) {
    const phone = request.patient && request.patient.phone;
    const typed = { sms: phone && FRENCH_MOBILE.test(phone) ? phone : '', email: '' };
    let channel = 'sms';
    const input = el('input', { id: 'send-to', name: 'send-to', maxlength: 254, autocomplete: 'off', 'aria-describedby': 'send-to-hint send-note' });
    const text = el('span', {});
    const hint = el('span', { class: 'hint', id: 'send-to-hint' });
    const note = el('span', {});
    const message = el('div', { class: 'message', id: 'send-message', role: 'status', 'aria-live': 'polite', hidden: true });
    const showChannel = () => {
      const c = SEND_TO[channel];
      text.textContent = c.text;
      hint.textContent = c.hint;
      note.textContent = c.note;
      input.type = c.type;
      input.inputMode = c.type === 'tel' ? 'tel' : 'email';
      input.value = typed[channel];
      input.removeAttribute('aria-invalid');
    };
    input.addEventListener('input', () => { typed[channel] = input.value; });
    const button = el('button', { type: 'submit', class: 'primary', id: 'send-confirmation-button' }, 'Envoyer la confirmation');
    const form = el('form', { id: 'send-confirmation', class: 'send-box', novalidate: true, hidden: true, 'aria-label': 'Envoyer la confirmation au patient' },
      el('fieldset', { class: 'plain' }, el('legend', { class: 'small' }, 'Envoyer la confirmation par'),
        el('div', { class: 'choices' }, ['sms', 'email'].map((c) => el('label', { class: 'choice' },
          el('input', {
            type: 'radio', name: 'send-channel', value: c, checked: c === channel,
            onchange: () => { channel = c; showChannel(); },
          }), label('message_channel', c))))),
      el('div', { class: 'field' }, el('label', { for: 'send-to' }, text, hint), input),
      el('p', { class: 'small muted', id: 'send-note' }, note,
        ' Le message donne la date, le médecin, le lieu et le numéro de la demande, jamais le motif.'),
      message,
      button);
    showChannel();
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const to = input.value.trim();
      if (!to) {
        input.setAttribute('aria-invalid', 'true');
        message.className = 'message error';
        showError(message, channel === 'sms' ? 'Indiquez le numéro de portable du patient.' : 'Indiquez l’adresse e-mail du patient.');
        input.focus();
        return;
      }
      input.removeAttribute('aria-invalid');
      busy(button, async () => {
        try {
          const res = await client.call('request.confirmation.send', { request_id: request.request_id, channel, to });
          const m = res.message;
          // The address is not kept once sent.
          typed[channel] = '';
          input.value = '';
          message.className = 'message ok';
          showError(message, `Confirmation envoyée${m.state === 'pending' ? ' (en attente d’envoi)' : ''}`
            + ` par ${m.channel === 'email' ? 'e-mail' : label('message_channel', m.channel)} : message n° ${m.message_id}.`);
        } catch (e) {
          if (e.field === 'to') input.setAttribute('aria-invalid', 'true');
          message.className = 'message error';
          showError(message, errorWithReason(e, {
            invalid_field: channel === 'sms' ? 'Ce numéro n’est pas celui d’un portable français.' : 'Cette adresse e-mail n’est pas valide.',
            conflict: 'Cette demande n’a plus de rendez-vous confirmé : il n’y a pas de confirmation à envoyer.',
          }));
        }
      });
    });
    return form;
  }

  function slipActions(request) {
    const note = el('textarea', { id: 'refuse-note', maxlength: 500, rows: 2 });
    return el('div', { class: 'no-print' },
      el('div', { class: 'row' },
        el('button', { type: 'button', class: 'primary', id: 'slip-print-button',
          onclick: (ev) => busy(ev.currentTarget, () => printSlip(request)) }, 'Imprimer le bon de réorientation')),
      el('details', {},
        el('summary', {}, 'Le patient refuse la réorientation'),
        el('p', { class: 'small muted' }, 'Le rendez-vous est annulé et le refus est enregistré.'),
        el('div', { class: 'field' }, el('label', { for: 'refuse-note' }, 'Commentaire (facultatif)'), note),
        el('button', {
          type: 'button', class: 'danger', id: 'slip-refuse',
          onclick: (ev) => busy(ev.currentTarget, async () => {
            try {
              const data = { request_id: request.request_id };
              if (note.value.trim()) data.note = note.value.trim();
              const r = await client.call('slip.refuse', data);
              toast('Refus de la réorientation enregistré.', 'ok');
              show(await complete(r), true);
              refreshList();
            } catch (e) {
              toast(errorText(e), 'error');
            }
          }),
        }, 'Enregistrer le refus')),
      el('div', { id: 'slip-preview' }));
  }

  async function printSlip(request) {
    let slip;
    try {
      slip = await client.call('slip.get', { request_id: request.request_id });
    } catch (e) {
      toast(errorText(e), 'error');
      return;
    }
    const render = (id) => el('article', { class: 'slip', id, 'aria-label': 'Bon de réorientation' },
      el('h2', {}, 'Bon de réorientation'),
      el('p', {}, el('strong', {}, 'Patient : '), slip.display_name || slip.initials),
      el('p', { class: 'cap' }, el('strong', {}, 'Rendez-vous : '), fmtLong(slip.start), ` (${label('mode', slip.mode).toLowerCase()})`),
      el('p', {}, el('strong', {}, 'Avec : '), slip.practitioner ? `Dr ${slip.practitioner.given_name} ${slip.practitioner.family_name}` : 'le médecin du centre'),
      el('p', {}, el('strong', {}, 'Adresse : '), `${slip.site.name}, ${slip.site.address}`,
        slip.site.phone ? [' · Tél. ', el('span', { class: 'nowrap' }, slip.site.phone)] : ''),
      el('p', {}, el('strong', {}, 'Adressé par : '), slip.department, ` (médecin senior RPPS ${slip.senior_rpps})`),
      el('p', {}, slip.how_to_cancel),
      el('hr'),
      el('div', { class: 'slip-text' }, slip.text),
      el('p', { class: 'small muted' }, `Bon n° ${slip.request_id}-${slip.booking_id}, édité le ${fmtShort(slip.issued_at)}`),
      slip.refused ? el('p', { class: 'refused' }, 'Le patient a refusé la réorientation.') : null);
    printSheet(render, $('#slip-preview'), 'slip');
  }

  // --- Loading and live updates -------------------------------------------------------

  /**
   * The request as request.get reads it (with the patient, the booking and
   * the cancellation, which the answers of request.create, offer.decline,
   * request.cancel and slip.refuse may lack: see the report on issue 5),
   * keeping the offer of ANSWER with its alternatives; ANSWER itself when the
   * read fails.
   */
  async function complete(answer) {
    if (answer.offer) offers.set(answer.request_id, answer.offer);
    try {
      return await client.call('request.get', { request_id: answer.request_id });
    } catch {
      return answer;
    }
  }

  async function reload(requestId, focus) {
    try {
      const r = await client.call('request.get', { request_id: requestId });
      if (!current || current.request_id === requestId) show(r, focus);
      return r;
    } catch (e) {
      toast(errorText(e), 'error');
      return null;
    }
  }

  async function openRequest(requestId) {
    try {
      show(await client.call('request.get', { request_id: requestId }), true);
      refreshList();
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  // What this browser remembers from the last request (form.reset() would
  // put back the values of the page's start).
  function applyRemembered() {
    const set = (sel, v) => { const n = q(sel); if (n && v != null) n.value = v; };
    set('#rq-commune', prefs.get(pk('commune'), null));
    set('#rq-distance', prefs.get(pk('distance'), null));
    set('#rq-senior', prefs.get(pk('senior'), null));
    set('#rq-regulator', prefs.get(pk('regulator'), null));
    set('#rq-regulator-id', prefs.get(pk('regulator_id'), null));
    const modes = prefs.get(pk('modes'), ['office']);
    for (const b of form.querySelectorAll('input[name="modes"]')) b.checked = modes.includes(b.value);
  }

  function reset() {
    stopTimer();
    current = null;
    offerBox.hidden = true;
    fill(offerBox);
    formHide.hidden = false;
    form.reset();
    applyRemembered();
    $('#rq-mt-field').hidden = true;
    q('label[for="rq-name"]').firstChild.textContent = 'Nom et prénom';
    showError(q('#rq-error'), null);
    formBox.scrollIntoView({ block: 'start' });
    q('#rq-name').focus({ preventScroll: true });
  }

  let listTimer = null;
  function refreshList() {
    if (!listBox) return;
    clearTimeout(listTimer);
    listTimer = setTimeout(loadList, 200);
  }

  async function loadList() {
    try {
      const res = await client.call('request.list', { limit: 50 });
      renderList(res.requests);
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  function renderList(requests) {
    if (!requests.length) {
      fill(listBox, el('p', { class: 'muted' }, 'Aucune demande ces 7 derniers jours.'));
      return;
    }
    fill(listBox, el('ul', { class: 'list', id: 'requests-list' }, requests.map((r) => {
      const slot = (r.booking && r.booking.slot) || (r.offer && r.offer.slot);
      return el('li', { class: current && current.request_id === r.request_id ? 'row selected' : 'row', dataset: { request: r.request_id } },
        el('div', { class: 'grow' },
          el('strong', {}, patientName(r.patient)), ' · ',
          el('span', { class: `badge ${r.status}` }, label('request_status', r.status)), el('br'),
          el('span', { class: 'small muted' }, `${label('motif', r.motif.code)} · demandé ${fmtShort(r.created_at)}`,
            slot ? ` · RDV ${fmtShort(slot.start)}` : '')),
        el('span', { class: 'spacer' }),
        el('button', { type: 'button', class: 'small', 'aria-label': `Ouvrir la demande n° ${r.request_id}`,
          onclick: () => openRequest(r.request_id) }, 'Ouvrir'));
    })));
  }

  const isMine = (id) => current && current.request_id === id;
  client.on('offer.made', (d) => {
    if (isMine(d.request_id)) {
      toast('Un créneau vient d’être proposé pour votre demande.', 'ok');
      offers.set(d.request_id, d.offer);
      reload(d.request_id, true);
    } else {
      toast(`Un créneau est proposé pour la demande n° ${d.request_id} : ouvrez-la pour confirmer.`, 'ok');
    }
    refreshList();
  });
  client.on('offer.expired', (d) => {
    if (isMine(d.request_id)) toast('Le délai de confirmation est écoulé : le créneau a été libéré.', 'error');
    refreshList();
  });
  client.on('request.updated', (d) => {
    if (isMine(d.request_id) && d.status !== current.status) reload(d.request_id);
    refreshList();
  });
  client.on('booking.cancelled', (b) => {
    if (isMine(b.request_id)) {
      toast('Le rendez-vous a été annulé par le cabinet : un autre créneau est recherché.', 'error');
      reload(b.request_id);
    }
    refreshList();
  });
  client.on('outcome.reported', () => refreshList());
  client.on('resync', () => {
    if (current) reload(current.request_id);
    refreshList();
  });

  client.subscribe(['requests']).catch((e) => toast(errorText(e), 'error'));
  refreshList();
  return { reset, show };
}

