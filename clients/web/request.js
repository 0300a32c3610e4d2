// request.js: the requesters' page (pharmacy, emergency, professional, desk,
// sas): the patient form, the offer, the organisation's requests.
import { $, el, fill, startPage, PAGES } from './app.js';
import { mountRequester } from './requester.js';

const TITLES = {
  pharmacy: 'Demander un rendez-vous pour un patient de l’officine',
  emergency: 'Réorienter un patient des urgences vers un médecin de ville',
  professional: 'Demander un rendez-vous pour un patient',
  desk: 'Demander un rendez-vous pour un patient',
  sas: 'Réserver un rendez-vous après régulation',
};

const ctx = await startPage(['pharmacy', 'emergency', 'professional', 'desk', 'sas']);
if (ctx) {
  const role = ctx.session.role;
  $('#title').textContent = TITLES[role];
  document.title = `${TITLES[role]} · Soins non programmés`;
  const others = (PAGES[role] || []).filter(([href]) => href !== 'request.html');
  fill($('#nav'), others.map(([href, text]) => el('a', { href }, text)));
  mountRequester(ctx, $('#form-box'), $('#offer-box'), $('#list-box'), $('#form-card'));
}
