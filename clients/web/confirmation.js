// confirmation.js: the confirmation handed to a patient whose request is
// booked (issue 15 §4), for every requester: when, with whom, where (or how,
// at home or by teleconsultation), what to bring, whom to tell when the
// patient cannot come, the request's number and who sent the patient.  Built
// from the request as request.get returns it, printed on one A5 or A4 page.
//
// snpctl writes the same document (clients/cli/confirmation.c, `snpctl
// request confirmation`): change the two together.
//
// The motif is deliberately left out, like every other health detail: the
// sheet leaves with the patient and may be read by others (family, a
// neighbour, a pharmacy counter); the practice already has the motif.  The
// patient's name is printed only while the requester's view still carries
// it (until the identity is erased).
import { el, fmtFull, practitionerName, siteCommune } from './app.js';

// What the patient should have at hand, whatever the mode.
const TO_BRING = [
  'votre carte Vitale (ou votre attestation de droits)',
  'vos ordonnances et la liste de vos traitements en cours (ou les boîtes de médicaments)',
  'le carnet de santé, pour un enfant',
  'vos résultats d’examens récents (prises de sang, radiographies)',
  'une pièce d’identité',
];

// By mode: the advice before the list, the list's heading, what "coming"
// means for the cancellation sentence.
const BY_MODE = {
  office: {
    advice: 'Présentez-vous quelques minutes avant l’heure.',
    heading: 'À apporter',
    come: 'venir',
  },
  home: {
    advice: 'Soyez chez vous à l’heure prévue et gardez votre téléphone près de vous : le médecin peut appeler avant de venir, ou arriver un peu plus tard.',
    heading: 'À préparer pour le médecin',
    come: 'être chez vous',
  },
  teleconsultation: {
    advice: 'Prévoyez un téléphone ou un ordinateur (avec caméra si possible), chargé, dans un endroit calme, quelques minutes avant l’heure.',
    heading: 'À garder sous la main',
    come: 'être disponible',
  },
};

// Who to tell, by kind of site.
const WHO = { practice: 'le cabinet', csnp: 'le centre', teleconsultation: 'le service' };

/**
 * Whether the booked SLOT is offered by TERRITORY (territory.get's answer),
 * so that its name may head the sheet: its sites list holds the slot's site
 * (protocol 1.2.0); without the list, a CPTS is taken to be.
 */
function ownSite(territory, slot) {
  if (!territory) return false;
  if (territory.sites) return territory.sites.some((s) => s.site_id === slot.site.site_id);
  return territory.kind === 'cpts';
}

/** "1 quai Surcouf, 35600 Redon": the commune added unless the address names it. */
function siteAddress(site, communes) {
  const commune = siteCommune(site, communes);
  if (site.address.includes(commune)) return site.address;
  return `${site.address}, ${site.postal_code ? `${site.postal_code} ` : ''}${commune}`;
}

/**
 * The confirmation of REQUEST (booked, with its booking) as an <article
 * class="slip confirmation"> with id ID.  CTX holds what the page knows
 * besides the request: territory (territory.get, may be null), communes
 * (the territory's) and requester (the organisation's name from the
 * session, may be null).
 */
export function renderConfirmation(request, ctx, id) {
  const b = request.booking;
  const slot = b.slot;
  const site = slot.site;
  const mode = BY_MODE[slot.mode] || BY_MODE.office;
  const p = request.patient;
  const name = p && (p.display_name || p.initials);
  const field = (label, ...value) => el('p', {}, el('strong', {}, `${label} : `), ...value);
  // A new node at each use: a node appended twice would move.
  const phone = () => (site.phone ? el('span', { class: 'nowrap' }, site.phone) : null);
  const who = WHO[site.kind] || WHO.practice;
  const [day, time] = fmtFull(slot.start).split(' à ');

  let where;
  if (slot.mode === 'home') {
    where = [
      field('Où', 'à votre domicile : le médecin vient chez vous.'),
      field('Cabinet', `${site.name}, ${siteAddress(site, ctx.communes)}`),
    ];
  } else if (slot.mode === 'teleconsultation') {
    const how = p && !p.phone
      ? ['vous n’avez pas laissé de numéro de téléphone : appelez ', who, site.phone ? [' au ', phone()] : '',
        ' avant l’heure du rendez-vous pour le donner.']
      : ['le médecin vous contacte à l’heure du rendez-vous au numéro de téléphone que vous avez donné, par un appel ou par un lien vidéo.'];
    where = [field('Comment', 'en téléconsultation : ', ...how), field('Service', site.name)];
  } else {
    where = field('Lieu', site.name, el('br'), siteAddress(site, ctx.communes));
  }

  const cancel = site.phone
    ? [`Si vous ne pouvez pas ${mode.come}, prévenez ${who} au `, phone(), ', pour que le créneau serve à un autre patient.']
    : [`Si vous ne pouvez pas ${mode.come}, prévenez ${ctx.requester || 'la structure qui a pris ce rendez-vous'}, pour que le créneau serve à un autre patient.`];

  return el('article', { class: 'slip confirmation', id, 'aria-label': 'Confirmation de rendez-vous' },
    ownSite(ctx.territory, slot) ? el('p', { class: 'slip-header' }, ctx.territory.name) : null,
    el('h2', {}, 'Confirmation de rendez-vous'),
    name ? field('Patient', name) : null,
    field('Rendez-vous', el('span', { class: 'when' }, day, ' à ', el('span', { class: 'nowrap' }, time))),
    field('Avec', slot.practitioner ? practitionerName(slot) : `le médecin de garde du centre (${site.name})`),
    where,
    site.phone ? field('Téléphone', phone()) : null,
    el('p', {}, mode.advice),
    el('h3', {}, mode.heading),
    el('ul', {}, TO_BRING.map((t) => el('li', {}, t))),
    el('p', { class: 'cancel' }, ...cancel),
    ctx.requester ? field('Adressé par', ctx.requester) : null,
    el('p', { class: 'small muted' }, `Demande n° ${request.request_id} · rendez-vous n° ${b.booking_id}`));
}
