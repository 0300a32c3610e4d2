// reception.js: the page of a site's reception desk (role reception,
// docs/rota.md).  Lists the patients expected on the site's slots — who they
// are, when, who sent them, which practitioner sees them, or that none is
// named on duty yet — live on the "bookings" topic, and the site's
// half-days with the practitioner on duty.  It reads only: a reception
// neither asks for slots nor names anyone.
import {
  $, el, fill, startPage, label, errorText, toast, fmtShort, fmtDay, patientName, renderBookingList,
} from './app.js';

const ctx = await startPage(['reception']);
if (ctx) main(ctx);

const HALF_DAY = { morning: 'matin', afternoon: 'après-midi', evening: 'soir' };

function main({ client, session, territory }) {
  const tz = (territory && territory.time_zone) || 'Europe/Paris';
  const bookings = new Map(); // booking_id -> booking
  const fresh = new Set(); // arrived live, highlighted
  if (session.site_name) $('#title').textContent = `Accueil · ${session.site_name}`;

  /** YYYY-MM-DD of the territory's day `offset` days from now. */
  function localDay(offset) {
    const d = new Date(client.now() + offset * 86400e3);
    return new Intl.DateTimeFormat('en-CA', { timeZone: tz }).format(d);
  }

  async function loadBookings() {
    const now = client.now();
    try {
      const res = await client.call('booking.list', {
        from: new Date(now - 86400e3).toISOString().replace(/\.\d+Z$/, 'Z'),
        to: new Date(now + 8 * 86400e3).toISOString().replace(/\.\d+Z$/, 'Z'),
        limit: 1000,
      });
      bookings.clear();
      for (const b of res.bookings) bookings.set(b.booking_id, b);
      renderBookings();
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  function renderBookings() {
    renderBookingList(bookings, $('#arrivals-count'), $('#arrivals-list'),
      'Aucun patient attendu pour l’instant.', bookingItem);
  }

  function bookingItem(b) {
    const p = b.patient;
    const pr = b.slot.practitioner;
    const cls = [fresh.has(b.booking_id) ? 'new' : '', b.status === 'cancelled' ? 'cancelled' : ''].join(' ').trim();
    return el('li', { class: cls || null, dataset: { booking: b.booking_id } },
      el('div', { class: 'row' },
        el('strong', {}, fmtShort(b.slot.start)),
        el('span', { class: `badge ${b.status === 'booked' ? 'booked' : 'cancelled'}` }, label('booking_status', b.status)),
        fresh.has(b.booking_id) ? el('span', { class: 'badge free' }, 'Nouveau') : null),
      el('dl', { class: 'kv' },
        el('dt', {}, 'Patient'),
        el('dd', { class: 'patient' }, patientName(p),
          p && (p.birth_date || p.birth_year) ? ` · né(e) ${p.birth_date ? `le ${p.birth_date.split('-').reverse().join('/')}` : `en ${p.birth_year}`}` : '',
          p && p.phone ? [' · ', el('a', { href: `tel:${p.phone.replace(/[^0-9+]/g, '')}` }, p.phone)] : ''),
        el('dt', {}, 'Médecin'),
        pr ? el('dd', {}, `Dr ${pr.given_name} ${pr.family_name}`)
          : el('dd', { class: 'warn' }, 'Médecin de garde pas encore nommé : prévenez la coordination'),
        el('dt', {}, 'Motif'),
        el('dd', {}, label('motif', b.motif.code), ` (${label('urgency', b.urgency).toLowerCase()})`),
        el('dt', {}, 'Adressé par'),
        el('dd', {}, b.requester.name || '', ` (${label('role', b.requester.kind)})`),
        b.cancellation ? [el('dt', {}, 'Annulation'), el('dd', {}, label('cancel_reason', b.cancellation.reason))] : null));
  }

  async function loadShifts() {
    try {
      const res = await client.call('shift.list', { from: localDay(0), to: localDay(6) });
      // Half-days whose slots were all withdrawn are not staffed any more.
      res.shifts = res.shifts.filter((s) => s.slots > 0);
      if (!res.shifts.length) {
        fill($('#duty-list'), el('li', { class: 'muted' }, 'Aucune demi-journée publiée sur ce lieu.'));
        return;
      }
      fill($('#duty-list'), res.shifts.map((s) => {
        const day = fmtDay(`${s.date}T12:00:00Z`);
        const who = s.practitioner
          ? `Dr ${s.practitioner.given_name} ${s.practitioner.family_name}`
          : 'non pourvue';
        return el('li', { class: s.practitioner ? null : 'unfilled', dataset: { shift: s.shift_id } },
          el('div', { class: 'row' },
            el('strong', {}, `${day}, ${HALF_DAY[s.half_day] || s.half_day}`),
            el('span', { class: `badge ${s.practitioner ? 'booked' : 'cancelled'}` }, who)),
          el('p', { class: 'small muted' }, `${s.booked} rendez-vous, ${s.free} créneau(x) libre(s)`,
            s.unattended ? el('strong', { class: 'warn' }, ` · ${s.unattended} patient(s) sans médecin nommé`) : ''));
      }));
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  client.on('booking.created', async (b) => {
    fresh.add(b.booking_id);
    await loadBookings();
    toast(`Nouveau patient attendu à ${fmtShort(b.slot.start)}.`, 'ok');
    loadShifts();
  });
  client.on('booking.cancelled', async (b) => {
    await loadBookings();
    toast(`Rendez-vous de ${fmtShort(b.slot.start)} annulé.`);
    loadShifts();
  });
  client.on('resync', () => {
    loadBookings();
    loadShifts();
  });
  $('#refresh').addEventListener('click', () => {
    loadBookings();
    loadShifts();
  });
  // Without the WebSocket, read again every 30 s; with it, every 2 minutes
  // (a practitioner named on duty changes the list without a push here).
  let lastLoad = Date.now();
  setInterval(() => {
    if (client.status !== 'online' || Date.now() - lastLoad >= 120000) {
      lastLoad = Date.now();
      loadBookings();
      loadShifts();
    }
  }, 30000);

  client.subscribe(['bookings']).catch((e) => toast(errorText(e), 'error'));
  loadBookings();
  loadShifts();
}
