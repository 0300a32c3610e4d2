-- Demo territory: the CPTS of the Pays de Redon and the SAS of Ille-et-Vilaine.
--
-- Loaded by the run command after the migrations, with
--   psql -v ON_ERROR_STOP=1 -f sql/demo/demo_territory.sql
-- It is idempotent: every insert is skipped when its row already exists, so
-- running it again changes nothing (not even the identity sequences), and
-- rows edited since the first run are left as they are.
--
-- What is real and what is not:
--   * Communes are real: INSEE codes and postal codes from the official
--     geographic code (COG), coordinates are the town centres (GeoNames,
--     WGS84, rounded to 4 decimals; Renac from memory, within ~500 m).
--   * People are fictional.  RPPS numbers are in the 109999000xx range, far
--     beyond the numbers handed out so far, and carry a valid Luhn key.
--   * FINESS numbers are fictional (3509900xx, 5609900xx) with a valid key.
--   * Street addresses are plausible, not real practices.  Phone numbers are
--     in the 02 61 91 xx xx block that ARCEP reserves for fiction.

BEGIN;

-- Territories ---------------------------------------------------------------

INSERT INTO territory (id, name, kind, time_zone, settings) VALUES
    ('demo-redon',  'CPTS du Pays de Redon (démo)',      'cpts', 'Europe/Paris', '{}'),
    ('demo-sas-35', 'SAS d''Ille-et-Vilaine (démo)',     'sas',  'Europe/Paris', '{}')
ON CONFLICT (id) DO NOTHING;

-- The CPTS's FINESS number, under which the national SAS platform shows its
-- slots (docs/fhir.md).  A made-up number of the département's series.
UPDATE territory SET finess = '350049871' WHERE id = 'demo-redon' AND finess IS NULL;

-- The SAS regulates with the CPTS's capacity, and the CPTS may fall back on
-- whatever the SAS of its département makes available.
INSERT INTO territory_neighbour (territory_id, neighbour_id) VALUES
    ('demo-sas-35', 'demo-redon'),
    ('demo-redon',  'demo-sas-35')
ON CONFLICT DO NOTHING;

-- Communes --------------------------------------------------------------------
-- The Pays de Redon straddles three départements: Ille-et-Vilaine (35),
-- Loire-Atlantique (44) and Morbihan (56).

INSERT INTO commune (insee, name, postal_code, latitude, longitude) VALUES
    ('35236', 'Redon',                  '35600', 47.6514, -2.0848),
    ('35013', 'Bains-sur-Oust',         '35600', 47.7036, -2.0705),
    ('35294', 'Sainte-Marie',           '35600', 47.6943, -2.0019),
    ('35219', 'Pipriac',                '35550', 47.8095, -1.9464),
    ('35237', 'Renac',                  '35660', 47.7183, -1.9961),
    ('44185', 'Saint-Nicolas-de-Redon', '44460', 47.6434, -2.0631),
    ('44007', 'Avessac',                '44460', 47.6532, -1.9896),
    ('44057', 'Fégréac',                '44460', 47.5848, -2.0441),
    ('44067', 'Guémené-Penfao',         '44290', 47.6333, -1.8333),
    ('56001', 'Allaire',                '56350', 47.6375, -2.1632),
    ('56194', 'Rieux',                  '56350', 47.5978, -2.1083),
    ('56232', 'Saint-Perreux',          '56350', 47.6695, -2.1081),
    ('56223', 'Saint-Jean-la-Poterie',  '56350', 47.6358, -2.1242),
    ('56061', 'La Gacilly',             '56200', 47.7656, -2.1322),
    ('35238', 'Rennes',                 '35000', 48.1120, -1.6743)
ON CONFLICT (insee) DO NOTHING;

INSERT INTO territory_commune (territory_id, insee)
SELECT 'demo-redon', insee
  FROM (VALUES ('35236'), ('35013'), ('35294'), ('35219'), ('35237'), ('44185'), ('44007'),
               ('44057'), ('44067'), ('56001'), ('56194'), ('56232'), ('56223'), ('56061'))
       AS v (insee)
ON CONFLICT DO NOTHING;

-- The SAS covers the whole département; the demo only lists the communes of
-- Ille-et-Vilaine it needs, plus Rennes where the regulation sits.
INSERT INTO territory_commune (territory_id, insee)
SELECT 'demo-sas-35', insee
  FROM (VALUES ('35236'), ('35013'), ('35294'), ('35219'), ('35237'), ('35238')) AS v (insee)
ON CONFLICT DO NOTHING;

-- General practitioners -------------------------------------------------------

INSERT INTO practitioner (rpps, family_name, given_name, profession, specialty,
                          accepts_new_patients) VALUES
    ('10999900011', 'Le Guen',  'Anne',    'medecin', 'SM54', false),
    ('10999900029', 'Morvan',   'Yann',    'medecin', 'SM54', false),
    ('10999900037', 'Guillou',  'Claire',  'medecin', 'SM54', true),
    ('10999900045', 'Rouxel',   'Thomas',  'medecin', 'SM54', false),
    ('10999900052', 'Le Bihan', 'Sophie',  'medecin', 'SM54', true),
    ('10999900060', 'Jégou',    'Pierre',  'medecin', 'SM54', false),
    ('10999900078', 'Tanguy',   'Maëlle',  'medecin', 'SM54', true),
    ('10999900086', 'Hamon',    'Julien',  'medecin', 'SM54', false),
    ('10999900094', 'Le Goff',  'Camille', 'medecin', 'SM54', true),
    ('10999900102', 'Briand',   'Nicolas', 'medecin', 'SM54', false),
    ('10999900110', 'Lemoine',  'Hélène',  'medecin', 'SM54', false),
    ('10999900128', 'Perrin',   'Antoine', 'medecin', 'SM54', true)
ON CONFLICT (rpps) DO NOTHING;

-- Sites -------------------------------------------------------------------------
-- Site ids are generated; everything below refers to sites by their name,
-- which is unique within a territory.

INSERT INTO site (territory_id, kind, name, address, commune_insee, latitude, longitude, phone)
SELECT 'demo-redon', v.kind, v.name, v.address, v.insee, v.lat, v.lon, v.phone
  FROM (VALUES
    ('practice', 'Cabinet médical du Port',
     '12 quai Duguay-Trouin, 35600 Redon', '35236', 47.6497, -2.0829, '02 61 91 00 01'),
    ('practice', 'Cabinet médical de la Gare',
     '3 avenue de la Gare, 35600 Redon', '35236', 47.6531, -2.0871, '02 61 91 00 02'),
    ('practice', 'Maison de santé de Bains-sur-Oust',
     '5 rue de l''Oust, 35600 Bains-sur-Oust', '35013', 47.7047, -2.0721, '02 61 91 00 03'),
    ('practice', 'Cabinet médical d''Allaire',
     '8 place de l''Église, 56350 Allaire', '56001', 47.6381, -2.1619, '02 61 91 00 04'),
    ('practice', 'Cabinet médical de Saint-Nicolas-de-Redon',
     '2 rue de la Mairie, 44460 Saint-Nicolas-de-Redon', '44185', 47.6441, -2.0620,
     '02 61 91 00 05'),
    ('practice', 'Maison de santé de Guémené-Penfao',
     '4 rue de la Gare, 44290 Guémené-Penfao', '44067', 47.6320, -1.8346, '02 61 91 00 06'),
    ('practice', 'Cabinet médical de Pipriac',
     '10 rue de Redon, 35550 Pipriac', '35219', 47.8087, -1.9473, '02 61 91 00 07'),
    ('practice', 'Cabinet médical de La Gacilly',
     '6 rue Saint-Vincent, 56200 La Gacilly', '56061', 47.7648, -2.1334, '02 61 91 00 08'),
    ('practice', 'Cabinet médical de Rieux',
     '1 place du Souvenir, 56350 Rieux', '56194', 47.5984, -2.1070, '02 61 91 00 09'),
    ('csnp', 'Centre de soins non programmés de Redon',
     '8 avenue Étienne Gascon, 35600 Redon', '35236', 47.6561, -2.0791, '02 61 91 00 10'),
    ('teleconsultation', 'Téléconsultation de la CPTS du Pays de Redon',
     '2 rue des Douves, 35600 Redon', '35236', 47.6520, -2.0852, '02 61 91 00 11')
  ) AS v (kind, name, address, insee, lat, lon, phone)
 WHERE NOT EXISTS (SELECT 1 FROM site s WHERE s.territory_id = 'demo-redon' AND s.name = v.name)
ON CONFLICT (territory_id, name) DO NOTHING;

-- Who works where: everyone in their own practice; five of them take
-- half-day shifts at the CSNP; three give teleconsultations.
INSERT INTO practitioner_site (rpps, site_id)
SELECT v.rpps, s.id
  FROM (VALUES
    ('10999900011', 'Cabinet médical du Port'),
    ('10999900029', 'Cabinet médical du Port'),
    ('10999900037', 'Cabinet médical de la Gare'),
    ('10999900045', 'Maison de santé de Bains-sur-Oust'),
    ('10999900052', 'Maison de santé de Bains-sur-Oust'),
    ('10999900060', 'Cabinet médical d''Allaire'),
    ('10999900078', 'Cabinet médical de Saint-Nicolas-de-Redon'),
    ('10999900086', 'Maison de santé de Guémené-Penfao'),
    ('10999900094', 'Maison de santé de Guémené-Penfao'),
    ('10999900102', 'Cabinet médical de Pipriac'),
    ('10999900110', 'Cabinet médical de La Gacilly'),
    ('10999900128', 'Cabinet médical de Rieux'),
    ('10999900011', 'Centre de soins non programmés de Redon'),
    ('10999900029', 'Centre de soins non programmés de Redon'),
    ('10999900037', 'Centre de soins non programmés de Redon'),
    ('10999900045', 'Centre de soins non programmés de Redon'),
    ('10999900078', 'Centre de soins non programmés de Redon'),
    ('10999900011', 'Téléconsultation de la CPTS du Pays de Redon'),
    ('10999900060', 'Téléconsultation de la CPTS du Pays de Redon'),
    ('10999900094', 'Téléconsultation de la CPTS du Pays de Redon')
  ) AS v (rpps, site_name)
  JOIN site s ON s.territory_id = 'demo-redon' AND s.name = v.site_name
ON CONFLICT DO NOTHING;

-- Every practitioner with a site in the territory belongs to it.
INSERT INTO territory_practitioner (territory_id, rpps)
SELECT DISTINCT s.territory_id, ps.rpps
  FROM practitioner_site ps
  JOIN site s ON s.id = ps.site_id
 WHERE s.territory_id = 'demo-redon'
ON CONFLICT DO NOTHING;

-- Requester organisations -----------------------------------------------------

INSERT INTO organisation (territory_id, kind, name, finess, rpps, commune_insee)
SELECT v.territory_id, v.kind, v.name, v.finess, v.rpps, v.insee
  FROM (VALUES
    ('demo-redon', 'pharmacy', 'Pharmacie du Pont (Redon)', '350990016', NULL, '35236'),
    ('demo-redon', 'pharmacy', 'Pharmacie de la Place (Allaire)', '560990012', NULL, '56001'),
    ('demo-redon', 'emergency', 'Urgences du centre hospitalier de Redon', '350990024', NULL,
     '35236'),
    ('demo-redon', 'professional', 'Cabinet infirmier Danet (Avessac)', NULL, '10999900136',
     '44007'),
    ('demo-redon', 'desk', 'Coordination de la CPTS du Pays de Redon', '350990040', NULL,
     '35236'),
    ('demo-sas-35', 'sas', 'SAS 35 – régulation ambulatoire (CHU de Rennes)', '350990032',
     NULL, '35238')
  ) AS v (territory_id, kind, name, finess, rpps, insee)
 WHERE NOT EXISTS (SELECT 1 FROM organisation o
                    WHERE o.territory_id = v.territory_id AND o.name = v.name)
ON CONFLICT (territory_id, name) DO NOTHING;

-- Slots -------------------------------------------------------------------------
-- SLOT SECTION, TO BE COMPLETED ONCE sql/migrations/0002_dispatch.sql EXISTS.
--
-- demo_slot_plan below computes the volunteered slots of the coming 7 local
-- days (today included, only starts still ahead of now()); the final INSERT
-- into the slot table is left commented out until that table exists.
--
--   * each GP: 2 to 4 slots of 20 minutes on weekdays, late afternoon
--     (from 16:40, 17:00 or 17:20 depending on the GP), in their practice;
--   * the CSNP, open every day: a slot every 15 minutes during half-day
--     shifts, 14:00-20:00 on weekdays, 09:00-13:00 and 14:00-19:00 at
--     weekends, one of its five GPs per shift in turn;
--   * teleconsultation: 12:30 and 12:50 on weekdays, 20 minutes, in turn;
--   * home visits: Dr Perrin (Rieux) and Dr Briand (Pipriac) at 14:00 and
--     14:40 on weekdays, 30 minutes.
--
-- Audiences vary (SAS only, SAS + emergency + pharmacy, everyone including
-- the public); SAS-only slots are released to every audience 2 hours before
-- their start if still free, and Dr Tanguy's slots are for children only.

CREATE TEMPORARY TABLE demo_slot_plan (
    site_id        bigint NOT NULL,
    rpps           text NOT NULL,
    starts_at      timestamptz NOT NULL,
    duration       interval NOT NULL,
    mode           text NOT NULL CHECK (mode IN ('office', 'home', 'teleconsultation')),
    audience       text[] NOT NULL,
    release_before interval,   -- open to every audience this long before start
    motif_restriction text     -- e.g. 'children', NULL for none
) ON COMMIT DROP;

WITH days AS (
    SELECT d::date AS day, extract(isodow FROM d)::int AS dow, n::int AS n
      FROM generate_series((now() AT TIME ZONE 'Europe/Paris')::date,
                           (now() AT TIME ZONE 'Europe/Paris')::date + 6,
                           interval '1 day') WITH ORDINALITY AS g (d, n)
),
gp AS (
    SELECT ps.rpps, ps.site_id, row_number() OVER (ORDER BY ps.rpps)::int AS i
      FROM practitioner_site ps
      JOIN site s ON s.id = ps.site_id AND s.territory_id = 'demo-redon' AND s.kind = 'practice'
),
-- The CSNP's half-day shifts (open every day) and who staffs each, in turn.
csnp_shift AS (
    SELECT days.day, sh.first, sh.last, s.id AS site_id, staff.rpps
      FROM days
      JOIN site s ON s.territory_id = 'demo-redon' AND s.kind = 'csnp'
      JOIN (VALUES (false, time '14:00', time '19:45', 0),
                   (true, time '09:00', time '12:45', 0),
                   (true, time '14:00', time '18:45', 2)) AS sh (weekend, first, last, turn)
        ON sh.weekend = (days.dow >= 6)
      CROSS JOIN LATERAL (SELECT ps.rpps FROM practitioner_site ps
                           WHERE ps.site_id = s.id
                           ORDER BY ps.rpps
                          OFFSET (days.n + sh.turn) % 5 LIMIT 1) AS staff
),
audiences (k, audience, release_before) AS (
    VALUES (0, ARRAY['sas'], interval '2 hours'),
           (1, ARRAY['sas', 'emergency', 'pharmacy'], NULL::interval),
           (2, ARRAY['sas', 'emergency', 'pharmacy', 'professional', 'desk', 'public'], NULL)
)
INSERT INTO demo_slot_plan
-- GP office slots, except for the GP who staffs the CSNP that afternoon.
SELECT gp.site_id, gp.rpps,
       (days.day + time '16:40' + (gp.i % 3 + k.n) * interval '20 minutes')
           AT TIME ZONE 'Europe/Paris',
       interval '20 minutes', 'office', a.audience, a.release_before,
       CASE WHEN gp.rpps = '10999900078' THEN 'children' END
  FROM days
  CROSS JOIN gp
  CROSS JOIN LATERAL generate_series(0, 1 + (gp.i + days.n) % 3) AS k (n)
  JOIN audiences a ON a.k = gp.i % 3
 WHERE days.dow <= 5
   AND NOT EXISTS (SELECT 1 FROM csnp_shift c WHERE c.day = days.day AND c.rpps = gp.rpps)
UNION ALL
-- CSNP shifts, a slot every 15 minutes.
SELECT c.site_id, c.rpps, t AT TIME ZONE 'Europe/Paris',
       interval '15 minutes', 'office',
       ARRAY['sas', 'emergency', 'pharmacy', 'professional', 'desk'], NULL, NULL
  FROM csnp_shift c
  CROSS JOIN LATERAL generate_series(c.day + c.first, c.day + c.last,
                                     interval '15 minutes') AS t
UNION ALL
-- Teleconsultations at lunchtime on weekdays, by one of the three in turn.
SELECT s.id, staff.rpps, (days.day + t.t) AT TIME ZONE 'Europe/Paris',
       interval '20 minutes', 'teleconsultation', ARRAY['sas', 'professional', 'desk'], NULL, NULL
  FROM days
  JOIN site s ON s.territory_id = 'demo-redon' AND s.kind = 'teleconsultation'
  CROSS JOIN (VALUES (time '12:30'), (time '12:50')) AS t (t)
  CROSS JOIN LATERAL (SELECT ps.rpps FROM practitioner_site ps
                       WHERE ps.site_id = s.id
                       ORDER BY ps.rpps
                      OFFSET days.n % 3 LIMIT 1) AS staff
 WHERE days.dow <= 5
UNION ALL
-- Home visits in the rural north and south of the territory, on weekdays.
SELECT gp.site_id, gp.rpps, (days.day + t.t) AT TIME ZONE 'Europe/Paris',
       interval '30 minutes', 'home', ARRAY['sas', 'professional', 'desk'], NULL, NULL
  FROM days
  JOIN gp ON gp.rpps IN ('10999900102', '10999900128')
  CROSS JOIN (VALUES (time '14:00'), (time '14:40')) AS t (t)
 WHERE days.dow <= 5;

DELETE FROM demo_slot_plan WHERE starts_at <= now();

-- Each slot is recorded as published by the demo set-up, with its event, as
-- any published slot is; slots colliding with one already there are skipped,
-- so a second run adds nothing.
WITH ins AS (
    INSERT INTO slot (territory_id, site_id, rpps, starts_at, duration_min, mode, audience,
                      max_age, release_minutes, published_by)
    SELECT s.territory_id, p.site_id, p.rpps, p.starts_at,
           (extract(epoch FROM p.duration) / 60)::int, p.mode, p.audience,
           CASE WHEN p.motif_restriction = 'children' THEN 15 END,
           (extract(epoch FROM p.release_before) / 60)::int, 'demo'
      FROM demo_slot_plan p
      JOIN site s ON s.id = p.site_id
    ON CONFLICT DO NOTHING
    RETURNING *
)
INSERT INTO event (territory_id, actor, kind, slot_id, to_status, data)
SELECT ins.territory_id, 'demo', 'slot.published', ins.id, 'free', snp_slot_facts(ins)
  FROM ins;

-- The CSNP's half-days are shifts (sql/migrations/0022_csnp_rota.sql): the
-- GP whose slots a shift holds is on duty for it since those slots were
-- published; the coordination states their status, independent, as it does
-- with snpctl shift assign (the slots' slot.assigned events say it to the
-- indicators).
SELECT snp_shift_assign(h.territory_id, 'demo', 'admin', h.id, h.rpps, 'independent')
  FROM shift h
 WHERE h.territory_id = 'demo-redon' AND h.rpps IS NOT NULL AND h.duty_status IS NULL;

-- The GPs of the CPTS who take new patients (setting new_patient_gps,
-- docs/messages.md): a patient without a médecin traitant seen by one of
-- the CPTS's GPs can be referred to them.  Set once; a coordinator changes
-- it afterwards.
UPDATE territory
   SET settings = settings || jsonb_build_object('new_patient_gps', (
           SELECT jsonb_agg(p.rpps ORDER BY p.family_name, p.rpps)
             FROM practitioner p JOIN territory_practitioner tp ON tp.rpps = p.rpps
            WHERE tp.territory_id = 'demo-redon' AND p.accepts_new_patients))
 WHERE id = 'demo-redon' AND NOT settings ? 'new_patient_gps';

COMMIT;
