// calls.js: the SAS regulator's call record (protocol 1.3.0, call.record and
// call.list), mounted on the SAS board.  One step: the outcome of the call
// (advice, prescription, a slot request, sent to the 15, other) and, for a
// slot request, the request created for the patient on this page, chosen
// among the organisation's recent requests that no call names yet.  Nothing
// about the patient is sent with the call: the figures it feeds are counts
// (docs/indicators.md, section SAS).
import { el, fill, label, LABELS, errorText, showError, busy, toast, prefs, fmtShort,
  patientName } from './app.js';

/**
 * Fills BOX with the call form and the list of the last 7 days' calls, for
 * a sas session of CTX.  Returns { refresh }, which reloads the requests and
 * the calls (after a request was created elsewhere on the page).
 */
export function mountCallRecord(ctx, box) {
  const { client, session } = ctx;
  const pk = (k) => `req.${session.organisation_id || session.role}.${k}`;
  let clientRef = null; // kept for a retry of the same content
  let lastPayload = null;

  const outcomes = el('div', { class: 'choices', id: 'call-outcomes' },
    Object.keys(LABELS.call_outcome).map((v) => el('label', { class: 'choice' },
      el('input', { type: 'radio', name: 'call_outcome', value: v, required: true }),
      label('call_outcome', v))));
  const requestSelect = el('select', { id: 'call-request', name: 'request_id' });
  const requestField = el('div', { class: 'field', id: 'call-request-field', hidden: true },
    el('label', { for: 'call-request' }, 'Demande créée pour le patient',
      el('span', { class: 'hint' }, 'Les demandes de votre organisation de ces 7 derniers jours qu’aucun appel ne désigne encore.')),
    requestSelect);
  const regulator = el('input', {
    type: 'text', id: 'call-regulator', name: 'regulator_id', maxlength: 64, autocomplete: 'off',
    value: prefs.get(pk('regulator_id'), ''), 'aria-describedby': 'call-regulator-hint',
  });
  const errorBox = el('div', { class: 'message error', id: 'call-error', role: 'alert', hidden: true });
  const submit = el('button', { type: 'submit', class: 'primary', id: 'call-submit' }, 'Enregistrer l’issue');
  const form = el('form', { id: 'call-form', novalidate: true, 'aria-describedby': 'call-error' },
    el('fieldset', { class: 'plain' }, el('legend', {}, 'L’appel s’est conclu par'), outcomes),
    requestField,
    el('div', { class: 'field' },
      el('label', { for: 'call-regulator' }, 'RPPS ou identifiant du régulateur',
        el('span', { class: 'hint', id: 'call-regulator-hint' }, 'Facultatif')),
      regulator),
    errorBox, submit);
  const listBox = el('div', { id: 'call-list', 'aria-live': 'polite' });
  fill(box, form, el('h3', {}, 'Appels de ces 7 derniers jours'), listBox);

  const chosen = () => {
    const r = form.querySelector('input[name="call_outcome"]:checked');
    return r ? r.value : null;
  };

  let calls = [];

  async function refresh() {
    try {
      const [answer, requests] = await Promise.all([
        client.call('call.list', { limit: 50 }),
        client.call('request.list', { limit: 50 }),
      ]);
      calls = answer.calls;
      renderCalls();
      const linked = new Set(calls.filter((c) => c.request_id).map((c) => c.request_id));
      const free = requests.requests.filter((r) => !linked.has(r.request_id));
      const was = requestSelect.value;
      fill(requestSelect, free.length
        ? free.map((r) => el('option', { value: String(r.request_id) },
          `n° ${r.request_id} · ${patientName(r.patient)} · ${fmtShort(r.created_at)} · ${label('request_status', r.status)}`))
        : el('option', { value: '' }, 'Aucune demande à lier : créez-la d’abord ci-dessus'));
      // The newest request is the one the regulator has just created.
      if (free.some((r) => String(r.request_id) === was)) requestSelect.value = was;
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  function renderCalls() {
    if (!calls.length) {
      fill(listBox, el('p', { class: 'muted' }, 'Aucun appel enregistré.'));
      return;
    }
    fill(listBox, el('div', { class: 'table-wrap' }, el('table', { id: 'call-table' },
      el('thead', {}, el('tr', {}, ['N°', 'Enregistré', 'Issue', 'Demande'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, calls.map((c) => el('tr', { 'data-call': String(c.call_id) },
        el('td', {}, String(c.call_id)),
        el('td', {}, fmtShort(c.recorded_at)),
        el('td', {}, label('call_outcome', c.outcome)),
        el('td', {}, c.request_id ? `n° ${c.request_id}` : '—')))))));
  }

  outcomes.addEventListener('change', () => {
    // The request form on the same page may have remembered the regulator
    // since this one was drawn.
    if (!regulator.value) regulator.value = prefs.get(pk('regulator_id'), '');
    requestField.hidden = chosen() !== 'slot_request';
    showError(errorBox, null);
    if (!requestField.hidden) refresh();
  });

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const outcome = chosen();
    if (!outcome) {
      showError(errorBox, 'Choisissez l’issue de l’appel.');
      form.querySelector('input[name="call_outcome"]').focus();
      return;
    }
    const data = { outcome };
    if (outcome === 'slot_request') {
      if (!requestSelect.value) {
        showError(errorBox, 'Choisissez la demande créée pour le patient (créez-la d’abord).');
        requestSelect.focus();
        return;
      }
      data.request_id = Number(requestSelect.value);
    }
    const reg = regulator.value.trim();
    if (reg) data.regulator_id = reg;
    showError(errorBox, null);
    // The same content keeps its client_ref: a retry after a lost answer
    // returns the call recorded the first time instead of a second one.
    const payload = JSON.stringify(data);
    if (payload !== lastPayload || !clientRef) {
      const stamp = new Date(client.now()).toISOString().replace(/[-:]/g, '').slice(0, 15);
      clientRef = `web-call-${session.organisation_id || 0}-${stamp}-${Math.random().toString(36).slice(2, 8)}`;
      lastPayload = payload;
    }
    prefs.set(pk('regulator_id'), reg);
    busy(submit, async () => {
      try {
        const call = await client.call('call.record', { client_ref: clientRef, ...data });
        clientRef = null;
        lastPayload = null;
        toast(`Appel n° ${call.call_id} enregistré : ${label('call_outcome', call.outcome)}.`);
        form.reset();
        regulator.value = reg;
        requestField.hidden = true;
        await refresh();
      } catch (e) {
        if (e.code === 'conflict') clientRef = null;
        showError(errorBox, errorText(e));
      }
    });
  });

  refresh();
  return { refresh };
}
