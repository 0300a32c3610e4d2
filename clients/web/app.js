// app.js: what every page of the snpd web client shares.
//
// - Client: the snp.v1 WebSocket connection (auth first, request ids, pending
//   calls matched by id, pushes by event name, reconnection with a growing
//   delay, subscriptions renewed after a reconnection) with a fallback on the
//   HTTP JSON API while the WebSocket is down.
// - startPage: the common start of a page (token from sessionStorage, the
//   header with who is signed in, the connection status, the role check).
// - French labels for the protocol's enumerations and error codes, date and
//   time formatting in the territory's local time, a small DOM builder.
//
// Plain ES module, no dependency, no build step: the service runs without
// internet, and the server's Content-Security-Policy allows only files from
// this origin (no inline script or style attribute).

import { LABELS_FR } from './labels.js';

export const TOKEN_KEY = 'snp.token';
export const SESSION_KEY = 'snp.session';

// --- French labels -----------------------------------------------------------

// The enumerations' labels are declared with the protocol (the "labels_fr" of
// protocol/snp.v1.json) and generated into labels.js, the same words snpctl
// and the indicator catalogue use (tests/clients/test_snpctl.c,
// labels_match_the_catalogue).  The pages know them by these names.
export const LABELS = {
  role: LABELS_FR.role,
  mode: LABELS_FR.slot_mode,
  audience: LABELS_FR.audience,
  slot_status: LABELS_FR.slot_status,
  request_status: LABELS_FR.request_status,
  booking_status: LABELS_FR.booking_status,
  urgency: LABELS_FR.urgency,
  motif: LABELS_FR.motif_code,
  sex: LABELS_FR.sex,
  priority_group: LABELS_FR.priority_group,
  outcome: LABELS_FR.outcome_kind,
  // participation.get (protocol 1.4.0): why a booking gives no SNP supplement.
  supplement_reason: LABELS_FR.supplement_reason,
  precondition_kind: LABELS_FR.precondition_kind,
  cancel_reason: LABELS_FR.cancel_reason,
  decline_reason: LABELS_FR.decline_reason,
  pharmacy_protocol: LABELS_FR.pharmacy_protocol,
  test_result: LABELS_FR.test_result,
  pharmacy_exclusion: LABELS_FR.pharmacy_exclusion,
  site_kind: LABELS_FR.site_kind,
  horizon: LABELS_FR.horizon,
  territory_kind: LABELS_FR.territory_kind,
  token_state: LABELS_FR.token_state,
  // What a SAS call became (call.record).
  call_outcome: LABELS_FR.call_outcome,
  // CSNP shifts (shift.list, protocol 1.5.0).
  half_day: LABELS_FR.half_day,
  duty_status: LABELS_FR.duty_status,
  // The messages snpd sends (message.list, protocol 1.6.0).
  message_kind: LABELS_FR.message_kind,
  message_channel: LABELS_FR.message_channel,
  message_state: LABELS_FR.message_state,
  // The units of indicators.get (docs/indicators.md), as written after a
  // value: not an enumeration of the protocol.
  indicator_unit: { percent: '%', minutes: 'min', hours: 'h' },
};

/** The French label of VALUE in the enumeration KIND, or VALUE itself. */
export function label(kind, value) {
  const table = LABELS[kind];
  return (table && table[value]) || String(value);
}

const ERROR_TEXT = {
  bad_json: 'Le message envoyé est illisible par le serveur.',
  too_large: 'Le message envoyé est trop long.',
  too_deep: 'Le message envoyé est trop imbriqué.',
  duplicate_key: 'Le message envoyé contient un champ en double.',
  invalid_utf8: 'Le texte contient des caractères invalides.',
  unknown_type: 'Opération inconnue du serveur.',
  missing_field: 'Un champ obligatoire manque.',
  invalid_field: 'Un champ n’est pas valide.',
  unknown_field: 'Le serveur ne connaît pas un des champs envoyés.',
  unauthenticated: 'Jeton d’accès inconnu : reconnectez-vous.',
  token_expired: 'Votre jeton d’accès a expiré : demandez-en un nouveau à la coordination.',
  token_revoked: 'Votre jeton d’accès a été révoqué : demandez-en un nouveau à la coordination.',
  forbidden: 'Votre rôle ne permet pas cette opération.',
  other_territory: 'Cet élément appartient à un autre territoire.',
  not_found: 'Élément introuvable.',
  method_not_allowed: 'Opération non disponible.',
  conflict: 'L’état a changé entre-temps : l’opération n’est plus possible.',
  slot_taken: 'Ce créneau vient d’être pris par quelqu’un d’autre.',
  hold_expired: 'Le délai de réservation est écoulé : un nouveau créneau est recherché.',
  too_late: 'Trop tard (ou trop tôt) pour cette opération.',
  rate_limited: 'Trop de demandes en peu de temps : réessayez dans un instant.',
  unavailable: 'Le service est momentanément indisponible : réessayez dans un instant.',
  internal: 'Erreur du serveur : réessayez, puis prévenez l’administrateur si elle persiste.',
  timeout: 'Le serveur ne répond pas : vérifiez la connexion et réessayez.',
  disconnected: 'La connexion a été coupée avant la réponse : réessayez.',
  network: 'Impossible de joindre le serveur : vérifiez la connexion.',
};

const FIELD_TEXT = {
  'patient.display_name': 'nom du patient',
  'patient.initials': 'initiales',
  'patient.birth_date': 'date de naissance',
  'patient.birth_year': 'année de naissance',
  'patient.phone': 'téléphone du patient',
  'patient.commune_insee': 'commune',
  'patient.mt_rpps': 'RPPS du médecin traitant',
  'motif.text': 'précisions sur le motif',
  'constraints.max_distance_km': 'distance maximale',
  'source.emergency.senior_rpps': 'RPPS du médecin senior',
  'source.emergency.triage_level': 'niveau de tri',
  'source.sas.regulator_name': 'nom du régulateur',
  site_id: 'site',
  rpps: 'RPPS du médecin',
  organisation_id: 'numéro de l’organisation',
  expires_days: 'durée de validité',
  label: 'libellé',
  duty_status: 'statut du médecin de garde',
  to: 'numéro ou adresse du patient',
  new_patient_gps: 'médecins qui prennent de nouveaux patients',
};

/** An error answered by the server (or met on the way), with its code. */
export class ApiError extends Error {
  constructor(code, message, field, status) {
    super(message || code);
    this.code = code;
    this.field = field;
    this.status = status;
  }
}

/** A French sentence for ERR, an ApiError or any other exception. */
export function errorText(err) {
  if (!(err instanceof ApiError)) return `Erreur inattendue : ${err && err.message ? err.message : err}`;
  let text = ERROR_TEXT[err.code];
  if (!text) {
    // An unknown code is read by its HTTP status class (protocol, section 9).
    text = err.status >= 500 ? ERROR_TEXT.internal : 'La demande a été refusée par le serveur.';
  }
  if (err.field && (err.code === 'invalid_field' || err.code === 'missing_field')) {
    text += ` (champ : ${FIELD_TEXT[err.field] || err.field})`;
  }
  return text;
}

/**
 * ERR in French (LEADS[code] when the caller knows better what the code
 * means for its action), followed by the server's own reason when it gave
 * one (a conflict says which state forbids the action).
 */
export function errorWithReason(err, leads = {}) {
  const text = (err instanceof ApiError && leads[err.code]) || errorText(err);
  if (!(err instanceof ApiError) || !err.message || err.message === err.code) return text;
  return `${text} Réponse du serveur : « ${err.message} »`;
}

// --- HTTP routes (fallback while the WebSocket is down) ----------------------

const ROUTES = {
  'slot.publish': ['POST', '/slots'],
  'slot.withdraw': ['POST', '/slots/withdraw'],
  'slot.list': ['GET', '/slots'],
  'booking.list': ['GET', '/bookings'],
  'request.create': ['POST', '/requests'],
  'request.get': ['GET', '/requests/{request_id}'],
  'request.list': ['GET', '/requests'],
  'offer.accept': ['POST', '/requests/{request_id}/accept'],
  'offer.decline': ['POST', '/requests/{request_id}/decline'],
  'request.cancel': ['POST', '/requests/{request_id}/cancel'],
  'booking.cancel': ['POST', '/bookings/{booking_id}/cancel'],
  'outcome.report': ['POST', '/bookings/{booking_id}/outcome'],
  'booking.mt_handover': ['POST', '/bookings/{booking_id}/mt-handover'],
  'request.confirmation.send': ['POST', '/requests/{request_id}/confirmation'],
  'message.list': ['GET', '/messages'],
  'capacity.query': ['GET', '/capacity'],
  'slip.get': ['GET', '/requests/{request_id}/slip'],
  'slip.refuse': ['POST', '/requests/{request_id}/slip/refuse'],
  'territory.get': ['GET', '/territory'],
  'territory.settings.update': ['PATCH', '/territory/settings'],
  'indicators.get': ['GET', '/indicators'],
  'participation.get': ['GET', '/participation'],
  'participation.attestation': ['GET', '/participation/attestation'],
  'token.create': ['POST', '/tokens'],
  'token.list': ['GET', '/tokens'],
  'token.revoke': ['POST', '/tokens/{token_id}/revoke'],
};

/** Calls TYPE over the HTTP binding of snp.v1 with TOKEN; resolves with the response data. */
export async function httpCall(token, type, data = {}) {
  const route = ROUTES[type];
  if (!route) throw new ApiError('network', `${type} has no HTTP route`);
  const [method, pattern] = route;
  const rest = { ...data };
  const path = pattern.replace(/\{(\w+)\}/g, (_, name) => {
    const value = rest[name];
    delete rest[name];
    return encodeURIComponent(String(value));
  });
  let url = `/api/v1${path}`;
  const init = { method, headers: { Authorization: `Bearer ${token}` } };
  if (method === 'GET') {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(rest)) q.set(k, Array.isArray(v) ? v.join(',') : String(v));
    const qs = q.toString();
    if (qs) url += `?${qs}`;
  } else {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(rest);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new ApiError('network', String(e));
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const e = (body && body.error) || {};
    throw new ApiError(e.code || 'internal', e.message, e.field, res.status);
  }
  return body;
}

// --- WebSocket client -------------------------------------------------------------

const FATAL_AUTH = new Set(['unauthenticated', 'token_expired', 'token_revoked', 'forbidden']);

/**
 * The connection of one page to snpd.  open() connects and authenticates;
 * call(type, data) sends a request and resolves with the response data (or
 * rejects with an ApiError); on(event, fn) receives pushes by event name
 * ("booking.created"...), on('status', fn) the connection status ("online",
 * "offline", "connecting") and on('resync', fn) a reconnection after which
 * views must be refreshed (pushes are not replayed).
 */
export class Client {
  constructor(token) {
    this.token = token;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.handlers = new Map();
    this.topics = new Set();
    this.session = null;
    this.skewMs = 0;
    this.status = 'connecting';
    this.retryMs = 500;
    this.closedForGood = false;
    this.everOnline = false;
    this.fallback = false;
    this.opening = null;
  }

  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
  }

  emit(event, data) {
    for (const fn of this.handlers.get(event) || []) {
      try {
        fn(data);
      } catch (e) {
        console.error(e);
      }
    }
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.emit('status', status);
  }

  /** The server's clock now, in milliseconds (corrected by the skew seen at auth). */
  now() {
    return Date.now() + this.skewMs;
  }

  /** Connects and authenticates; resolves with the session (role, territory...). */
  open() {
    return new Promise((resolve, reject) => {
      this.opening = { resolve, reject };
      this.connect();
    });
  }

  connect() {
    this.setStatus(this.everOnline || this.fallback ? 'offline' : 'connecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    let ws;
    try {
      ws = new WebSocket(`${scheme}://${location.host}/api/v1/ws`, 'snp.v1');
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = async () => {
      try {
        const session = await this.send('auth', { token: this.token });
        this.session = session;
        const serverMs = Date.parse(session.server_time);
        if (!Number.isNaN(serverMs)) this.skewMs = serverMs - Date.now();
        this.retryMs = 500;
        if (this.topics.size) await this.send('subscribe', { topics: [...this.topics] });
        this.everOnline = true;
        this.setStatus('online');
        if (this.opening) {
          this.opening.resolve(session);
          this.opening = null;
        } else {
          this.emit('resync');
        }
      } catch (e) {
        if (e instanceof ApiError && FATAL_AUTH.has(e.code)) {
          this.closedForGood = true;
          ws.close();
          this.setStatus('denied');
          if (this.opening) this.opening.reject(e);
          else this.emit('denied', e);
          this.opening = null;
        } else {
          ws.close();
        }
      }
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = () => {
      if (this.ws === ws) this.ws = null;
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new ApiError('disconnected'));
      }
      this.pending.clear();
      if (this.closedForGood) return;
      if (this.everOnline) this.setStatus('offline');
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    if (this.closedForGood) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 15000);
    setTimeout(() => this.connect(), delay);
  }

  /**
   * Gives up waiting for the first WebSocket authentication and carries on
   * with SESSION (remembered from the sign-in) over HTTP; a later successful
   * connection emits 'resync'.
   */
  useFallback(session) {
    this.fallback = true;
    this.session = session;
    this.opening = null;
    this.setStatus('offline');
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.type === 'push') {
      this.emit(msg.event, msg.data);
      this.emit('push', msg);
      return;
    }
    const p = msg.id != null ? this.pending.get(msg.id) : null;
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.data || {});
    else {
      const e = msg.error || {};
      p.reject(new ApiError(e.code || 'internal', e.message, e.field));
    }
  }

  send(type, data, timeoutMs = 15000) {
    return new Promise((resolve, reject) => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        reject(new ApiError('disconnected'));
        return;
      }
      const id = String(this.nextId++);
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ApiError('timeout'));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const msg = { id, type };
      if (data && Object.keys(data).length) msg.data = data;
      ws.send(JSON.stringify(msg));
    });
  }

  /** Sends TYPE with DATA; over HTTP when the WebSocket is not connected. */
  async call(type, data = {}) {
    if (this.status === 'online' && this.ws && this.ws.readyState === WebSocket.OPEN) {
      return this.send(type, data);
    }
    return httpCall(this.token, type, data);
  }

  /** Adds TOPICS to the subscriptions, now and after every reconnection. */
  async subscribe(topics) {
    for (const t of topics) this.topics.add(t);
    if (this.status === 'online') return this.send('subscribe', { topics });
    return null;
  }

  close() {
    this.closedForGood = true;
    if (this.ws) this.ws.close();
  }
}

// --- DOM helpers -------------------------------------------------------------------

/**
 * Builds an element: el('button', {class: 'primary', onclick: fn}, 'Texte').
 * Attributes named on* become listeners; children are nodes or text (never
 * parsed as HTML); null and false children are skipped.
 */
export function el(tag, attrs = {}, ...children) {
  const node = tag === 'svg' || SVG_TAGS.has(tag)
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

const SVG_TAGS = new Set(['circle', 'text', 'g', 'title', 'rect', 'line', 'path', 'desc']);

function append(node, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of NODE. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** Shows MESSAGE in the page's live region (read out by screen readers). */
export function toast(message, kind = 'info') {
  let box = $('#toasts');
  if (!box) {
    box = el('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(box);
  }
  const item = el('div', { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 8000);
}

/** Saves a file answered in parts (indicators.export, participation.attestation) as a download. */
export function saveFile(res) {
  const blob = new Blob(res.parts, { type: res.content_type });
  const link = el('a', { href: URL.createObjectURL(blob), download: res.filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

/**
 * Asks in place, without a dialog: fills BOX with QUESTION (text or nodes),
 * CONFIRM (a button of class TONE, 'danger' by default, that calls
 * ONCONFIRM with itself) and « Annuler » (ONCANCEL, also on Escape), in a
 * group named LABEL.  KEY [name, value] marks the two buttons
 * data-confirm-NAME and data-cancel-NAME.  The confirmation gets the focus.
 */
export function askInline(box, { label: groupLabel, question, confirm, key, onConfirm, onCancel, tone = 'danger' }) {
  const [name, value] = key;
  const confirmButton = el('button', {
    type: 'button', class: `${tone} small`, [`data-confirm-${name}`]: value,
    onclick: (ev) => onConfirm(ev.currentTarget),
  }, confirm);
  fill(box, el('div', {
    class: 'confirm-inline', role: 'group', 'aria-label': groupLabel,
    onkeydown: (ev) => { if (ev.key === 'Escape') onCancel(); },
  },
  el('p', { class: 'small' }, question),
  el('div', { class: 'row' }, confirmButton,
    el('button', { type: 'button', class: 'small', [`data-cancel-${name}`]: value, onclick: onCancel }, 'Annuler'))));
  confirmButton.focus();
  return confirmButton;
}

/** Puts an error (or nothing) into the message area BOX. */
export function showError(box, err) {
  if (!box) return;
  if (!err) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.hidden = false;
  fill(box, typeof err === 'string' ? err : errorText(err));
}

/** Disables BUTTON while PROMISEFN runs; returns its result. */
export async function busy(button, promiseFn) {
  const was = button.disabled;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await promiseFn();
  } finally {
    button.disabled = was;
    button.removeAttribute('aria-busy');
  }
}

// --- Time ---------------------------------------------------------------------------

const DAYS = ['dimanche', 'lundi', 'mardi', 'mercredi', 'jeudi', 'vendredi', 'samedi'];
const DAYS_SHORT = ['dim.', 'lun.', 'mar.', 'mer.', 'jeu.', 'ven.', 'sam.'];
const MONTHS = ['janvier', 'février', 'mars', 'avril', 'mai', 'juin', 'juillet', 'août',
  'septembre', 'octobre', 'novembre', 'décembre'];

/**
 * Splits an RFC 3339 timestamp as the server writes it (in the territory's
 * local time) into its wall-clock parts, so that it is shown as it is,
 * whatever the browser's own time zone.
 */
export function parts(ts) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(ts || '');
  if (!m) return null;
  const [y, mo, d, h, mi] = m.slice(1).map(Number);
  const wd = new Date(Date.UTC(y, mo - 1, d)).getUTCDay();
  return { y, mo, d, h, mi, wd, date: `${m[1]}-${m[2]}-${m[3]}` };
}

const pad = (n) => String(n).padStart(2, '0');

/** "14:20" */
export function fmtTime(ts) {
  const p = parts(ts);
  return p ? `${pad(p.h)}:${pad(p.mi)}` : '';
}

/** "lundi 23 novembre" */
export function fmtDay(ts) {
  const p = parts(ts);
  return p ? `${DAYS[p.wd]} ${p.d === 1 ? '1er' : p.d} ${MONTHS[p.mo - 1]}` : '';
}

/** "lun. 23/11 14:20" */
export function fmtShort(ts) {
  const p = parts(ts);
  return p ? `${DAYS_SHORT[p.wd]} ${pad(p.d)}/${pad(p.mo)} ${pad(p.h)}:${pad(p.mi)}` : '';
}

/**
 * A deadline TS as a pharmacist says it, against today's date TODAY
 * (YYYY-MM-DD, in the territory's time zone: zonedParts(client.now(), tz).date):
 * "aujourd’hui avant minuit", "demain avant 10:15", "lun. 07/12 avant 10:15".
 * A deadline at 00:00 is the midnight that ends the day before (a same-day
 * request created on Friday ends at Saturday 00:00: "aujourd’hui avant minuit").
 */
export function fmtDeadline(ts, today) {
  const p = parts(ts);
  if (!p) return '';
  let day = new Date(Date.UTC(p.y, p.mo - 1, p.d));
  let time = `avant ${pad(p.h)}:${pad(p.mi)}`;
  if (p.h === 0 && p.mi === 0) {
    day = new Date(Date.UTC(p.y, p.mo - 1, p.d - 1));
    time = 'avant minuit';
  }
  const iso = (d) => d.toISOString().slice(0, 10);
  const [ty, tm, td] = (today || '').split('-').map(Number);
  const tomorrow = today ? iso(new Date(Date.UTC(ty, tm - 1, td + 1))) : null;
  if (iso(day) === today) return `aujourd’hui ${time}`;
  if (iso(day) === tomorrow) return `demain ${time}`;
  return `${DAYS_SHORT[day.getUTCDay()]} ${pad(day.getUTCDate())}/${pad(day.getUTCMonth() + 1)} ${time}`;
}

/** "lundi 23 novembre à 14:20" */
export function fmtLong(ts) {
  return ts ? `${fmtDay(ts)} à ${fmtTime(ts)}` : '';
}

/** "jeudi 10 décembre 2026 à 14 h 30", for what the patient takes away. */
export function fmtFull(ts) {
  const p = parts(ts);
  return p ? `${fmtDay(ts)} ${p.y} à ${p.h} h ${pad(p.mi)}` : '';
}

/** The calendar date N days after DATE (both YYYY-MM-DD). */
export function addDays(date, n) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

/** The calendar date (YYYY-MM-DD), weekday (mon...) and time of MS in time zone TZ. */
export function zonedParts(ms, tz) {
  const f = new Intl.DateTimeFormat('en-CA', {
    timeZone: tz || 'Europe/Paris',
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
    weekday: 'short', hourCycle: 'h23',
  });
  const o = {};
  for (const p of f.formatToParts(new Date(ms))) o[p.type] = p.value;
  return {
    date: `${o.year}-${o.month}-${o.day}`,
    weekday: o.weekday.toLowerCase().slice(0, 3),
    hour: Number(o.hour),
    minute: Number(o.minute),
  };
}

/** "2:05" for 125 seconds. */
export function fmtCountdown(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${pad(s % 60)}`;
}

/** Age in whole years at the server's date, from a birth date or year. */
export function ageOf(patient, nowMs) {
  if (!patient) return null;
  const now = new Date(nowMs);
  if (patient.birth_date) {
    const [y, m, d] = patient.birth_date.split('-').map(Number);
    let age = now.getFullYear() - y;
    if (now.getMonth() + 1 < m || (now.getMonth() + 1 === m && now.getDate() < d)) age--;
    return age;
  }
  if (patient.birth_year) return now.getFullYear() - patient.birth_year;
  return null;
}

// --- Formats --------------------------------------------------------------------

/** Whether S is an RPPS number: 11 digits with a valid Luhn key. */
export function isRpps(s) {
  if (!/^[0-9]{11}$/.test(s)) return false;
  let sum = 0;
  for (let i = 0; i < 11; i++) {
    let d = Number(s[10 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** A slot's practitioner as "Dr Anne Le Guen", or the site's kind when none is named. */
export function practitionerName(slot) {
  const p = slot && slot.practitioner;
  return p ? `Dr ${p.given_name} ${p.family_name}` : 'Médecin de garde du centre';
}

/** The patient's name or initials. */
export function patientName(patient) {
  if (!patient) return 'Identité effacée';
  return patient.display_name || patient.initials || '—';
}

/**
 * The commune name of SITE.  The protocol gives it as site.commune_name;
 * snpd 0.x omits it (see the report on issue 5), so it is taken from
 * COMMUNES (the territory's), else from the end of the address
 * ("…, 44460 Saint-Nicolas-de-Redon"), else the INSEE code.
 */
export function siteCommune(site, communes) {
  if (!site) return '';
  if (site.commune_name) return site.commune_name;
  const c = (communes || []).find((x) => x.insee === site.commune_insee);
  if (c) return c.name;
  const m = /\b\d{5}\s+([^,]+)$/.exec(site.address || '');
  return m ? m[1].trim() : site.commune_insee;
}

/** "1 créneau", "3 créneaux": N and the word for it, ONE or MANY (default ONE + "s"). */
export function plural(n, one, many = `${one}s`) {
  return `${n} ${n > 1 ? many : one}`;
}

// --- CSNP shifts (shift.list, protocol 1.5.0) ---------------------------------------

/** A shift's day and half-day: "samedi 12 décembre · Matin (08:00–12:00)". */
export function shiftTitle(shift) {
  return `${fmtDay(`${shift.date}T00:00`)} · ${label('half_day', shift.half_day)}`;
}

/** A shift's live slots in words: "8 créneaux : 7 libres, 1 réservé". */
export function shiftSlots(shift) {
  if (!shift.slots) return 'aucun créneau ouvert';
  return `${plural(shift.slots, 'créneau', 'créneaux')} : ${plural(shift.free, 'libre')}, ${plural(shift.booked, 'réservé')}`;
}

/**
 * Shows BOOKINGS (a Map of booking_id -> booking) in LIST by slot start, one
 * ITEM(booking) each (EMPTY when there is none), and the live ones' number in COUNT.
 */
export function renderBookingList(bookings, count, list, empty, item) {
  const all = [...bookings.values()].sort((a, b) => a.slot.start.localeCompare(b.slot.start));
  count.textContent = String(all.filter((b) => b.status === 'booked').length);
  fill(list, all.length ? all.map(item) : el('li', { class: 'muted' }, empty));
}

/** "Dr Anne Le Guen (retraité)": the practitioner on duty and their status, or null while unfilled. */
export function onDuty(shift) {
  if (!shift.practitioner) return null;
  const status = shift.duty_status ? label('duty_status', shift.duty_status).toLowerCase() : 'statut non renseigné';
  return `${practitionerName(shift)} (${status})`;
}

// --- Page start -------------------------------------------------------------------

/** The pages each role may use, for the menu and for a wrong-page message. */
export const PAGES = {
  gp: [['gp.html', 'Mes créneaux et rendez-vous']],
  pharmacy: [['request.html', 'Demander un rendez-vous pour un patient']],
  emergency: [['request.html', 'Réorienter un patient vers un médecin de ville']],
  professional: [['request.html', 'Demander un rendez-vous pour un patient']],
  sas: [['sas.html', 'Tableau de bord des disponibilités et réservation'],
    ['request.html', 'Demandes de rendez-vous']],
  desk: [['sas.html', 'Tableau de bord des disponibilités et réservation'],
    ['request.html', 'Demandes de rendez-vous']],
  coordinator: [['coordinator.html', 'Réglages, indicateurs et jetons d’accès du territoire'],
    ['sas.html', 'Disponibilités du territoire']],
  admin: [['coordinator.html', 'Réglages, indicateurs et jetons d’accès du territoire'],
    ['sas.html', 'Disponibilités du territoire']],
  reception: [['reception.html', 'Patients attendus et médecins de garde du lieu']],
};

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(SESSION_KEY);
  location.href = 'index.html';
}

const STATUS_TEXT = {
  connecting: 'Connexion…',
  online: 'En direct',
  offline: 'Pas de connexion en direct : reconnexion…',
  denied: 'Accès refusé',
};

/**
 * Starts a page: reads the token (or sends to the sign-in page), fills the
 * header (#who, #conn, #signout), connects, checks that the role is one of
 * ROLES (else explains which page to use), and resolves with
 * {client, session, territory}.  Resolves with null when the page cannot be used.
 */
export async function startPage(roles) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    location.replace(`index.html?next=${encodeURIComponent(location.pathname.replace(/^.*\//, ''))}`);
    return null;
  }
  const out = $('#signout');
  if (out) out.addEventListener('click', signOut);
  const conn = $('#conn');
  const client = new Client(token);
  client.on('status', (s) => {
    if (!conn) return;
    conn.dataset.status = s;
    conn.textContent = STATUS_TEXT[s] || s;
  });
  client.on('denied', (e) => {
    toast(errorText(e), 'error');
    setTimeout(signOut, 3000);
  });
  if (conn) {
    conn.dataset.status = 'connecting';
    conn.textContent = STATUS_TEXT.connecting;
  }
  let session;
  try {
    // Without a WebSocket after a few seconds, carry on over HTTP with the
    // session remembered at sign-in (pushes resume once it connects).
    const cached = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    const opened = client.open();
    session = cached
      ? await Promise.race([opened, new Promise((r) => setTimeout(() => r(null), 6000))])
      : await opened;
    if (!session) {
      client.useFallback(cached);
      session = cached;
      toast('Connexion en direct impossible pour l’instant : la page fonctionne sans mises à jour automatiques.', 'error');
    }
  } catch (e) {
    const main = $('main');
    fill(main, el('div', { class: 'card error', role: 'alert' },
      el('p', {}, errorText(e)),
      el('p', {}, el('a', { href: 'index.html' }, 'Retour à la connexion'))));
    sessionStorage.removeItem(TOKEN_KEY);
    return null;
  }
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  const who = $('#who');
  const showWho = (territoryName) => {
    if (!who) return;
    fill(who, label('role', session.role),
      session.organisation_name ? ` · ${session.organisation_name}` : '',
      session.rpps ? ` · RPPS ${session.rpps}` : '',
      session.site_name ? ` · ${session.site_name}` : '',
      ` · ${territoryName || session.territory_id}`);
  };
  showWho();
  if (!roles.includes(session.role)) {
    const pages = PAGES[session.role] || [];
    fill($('main'), el('div', { class: 'card', role: 'alert' },
      el('p', {}, `Cette page n’est pas prévue pour le rôle « ${label('role', session.role)} ».`),
      pages.length ? el('p', {}, 'Vos pages : ',
        pages.map(([href, text], i) => [i ? ', ' : '', el('a', { href }, text)])) : null));
    client.close();
    return null;
  }
  let territory = null;
  try {
    territory = await client.call('territory.get');
    showWho(territory.name);
  } catch (e) {
    toast(errorText(e), 'error');
  }
  return { client, session, territory };
}

/** Stored preferences of this browser (localStorage), by key. */
export const prefs = {
  get(key, fallback) {
    try {
      const v = localStorage.getItem(`snp.pref.${key}`);
      return v == null ? fallback : JSON.parse(v);
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(`snp.pref.${key}`, JSON.stringify(value));
    } catch {
      /* private mode: preferences are simply not kept */
    }
  },
};
