-- Messages to patients and practitioners (docs/messages.md): their view, the
-- confirmation, the médecin traitant's summary and the referral of a patient
-- without one, and the text of a message.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- The protocol's view of a row (type `message`); last_error only for
-- coordinators and admins (p_errors).
CREATE OR REPLACE FUNCTION snp_message_view(m message_outbox, p_errors boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'message_id', m.id, 'kind', m.kind, 'channel', m.channel, 'state', m.state,
        'booking_id', m.booking_id, 'created_at', snp_rfc3339(m.created_at, snp_tz(m.territory_id)),
        'done_at', snp_rfc3339(m.done_at, snp_tz(m.territory_id)), 'attempts', m.attempts,
        'last_error', CASE WHEN p_errors THEN left(m.last_error, 400) END))
$$;

-- The practitioner a message is addressed to (the MT, the GP referred to),
-- as the protocol's type practitioner.
CREATE OR REPLACE FUNCTION snp_message_practitioner(m message_outbox) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('rpps', p.rpps, 'family_name', p.family_name,
                              'given_name', p.given_name)
      FROM practitioner p WHERE p.rpps = m.practitioner_rpps
$$;

-- An outcome of a patient seen.
CREATE OR REPLACE FUNCTION snp_outcome_seen(p_outcome text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_outcome IN ('attended', 'redirected_emergency', 'hospitalised')
$$;

-- The confirmation (request.confirmation.send): the request must be the
-- organisation's and have a standing booking.  p_to is already checked
-- and normalised by snpd (a French mobile in E.164, or an e-mail address).
-- The address goes nowhere but the row: neither the event nor the audit.
CREATE OR REPLACE FUNCTION snp_message_confirmation(p_territory text, p_organisation bigint, p_actor text,
                                         p_role text, p_request bigint, p_channel text,
                                         p_to text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    b booking;
    m message_outbox;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM request
                    WHERE id = p_request AND territory_id = p_territory
                      AND organisation_id = p_organisation) THEN
        RAISE EXCEPTION 'no request %', p_request USING ERRCODE = 'SN404';
    END IF;
    SELECT * INTO b FROM booking WHERE request_id = p_request AND status = 'booked';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % has no booking to confirm', p_request
            USING ERRCODE = 'SN409', DETAIL = 'request_id';
    END IF;
    INSERT INTO message_outbox (territory_id, booking_id, kind, channel, recipient, created_by)
    VALUES (p_territory, b.id, 'confirmation', p_channel, p_to, p_actor)
    RETURNING * INTO m;
    PERFORM snp_event(p_territory, p_actor, 'message.queued', b.slot_id, p_request, b.id, NULL,
                      NULL, jsonb_build_object('message_id', m.id, 'kind', m.kind,
                                               'channel', m.channel));
    INSERT INTO audit (actor, role, action, request_id, detail)
    VALUES (p_actor, p_role, 'message.queued', p_request,
            jsonb_build_object('message_id', m.id, 'kind', m.kind, 'channel', m.channel,
                               'booking_id', b.id));
    RETURN jsonb_build_object('message', snp_message_view(m, false));
END $$;

-- The MT's summary, queued when an outcome of a patient seen is first
-- reported (a no-show corrected to attended counts then), once per
-- booking, when the request names an MT who is not the practitioner seen
-- and the territory has not turned mt_summary off.  An MT unknown to
-- snpd's reference is skipped (the gateway could not address them either).
CREATE OR REPLACE FUNCTION snp_message_mt_summary() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_mt text;
    v_seen text;
    v_territory text;
    m message_outbox;
BEGIN
    SELECT r.mt_rpps, s.rpps, s.territory_id INTO v_mt, v_seen, v_territory
      FROM request r, slot s, territory t
     WHERE r.id = NEW.request_id AND s.id = NEW.slot_id AND t.id = s.territory_id
       AND r.has_mt AND r.mt_rpps IS NOT NULL
       AND coalesce((t.settings ->> 'mt_summary')::boolean, true);
    IF NOT FOUND OR v_mt = v_seen
       OR NOT EXISTS (SELECT 1 FROM practitioner WHERE rpps = v_mt)
       OR EXISTS (SELECT 1 FROM message_outbox
                   WHERE booking_id = NEW.id AND kind = 'mt_summary') THEN
        RETURN NULL;
    END IF;
    INSERT INTO message_outbox (territory_id, booking_id, kind, channel, recipient,
                                practitioner_rpps, created_by)
    VALUES (v_territory, NEW.id, 'mt_summary', 'mssante', v_mt, v_mt, NEW.outcome_by)
    RETURNING * INTO m;
    PERFORM snp_event(v_territory, NEW.outcome_by, 'message.queued', NEW.slot_id, NEW.request_id,
                      NEW.id, NULL, NULL, jsonb_build_object('message_id', m.id, 'kind', m.kind,
                                                             'channel', m.channel));
    RETURN NULL;
END $$;

-- The referral of a patient without an MT (booking.mt_handover), by the
-- practitioner who saw them, once per booking: to the GP of the
-- territory's new_patient_gps, other than the caller and known to snpd,
-- with the fewest referrals in the territory so far (then the list's order).
CREATE OR REPLACE FUNCTION snp_message_mt_handover(p_territory text, p_rpps text, p_actor text,
                                        p_booking bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    b booking;
    v_has_mt boolean;
    v_gp text;
    v_earlier text;
    m message_outbox;
BEGIN
    SELECT bk.* INTO b FROM booking bk JOIN slot s ON s.id = bk.slot_id
     WHERE bk.id = p_booking AND s.territory_id = p_territory AND s.rpps = p_rpps
       FOR UPDATE OF bk;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no booking %', p_booking USING ERRCODE = 'SN404';
    END IF;
    SELECT has_mt INTO v_has_mt FROM request WHERE id = b.request_id;
    IF v_has_mt THEN
        RAISE EXCEPTION 'the patient has a médecin traitant'
            USING ERRCODE = 'SN409', DETAIL = 'booking_id';
    END IF;
    IF b.status <> 'booked' OR NOT coalesce(snp_outcome_seen(b.outcome), false) THEN
        RAISE EXCEPTION 'report that the patient was seen first (outcome attended, '
                        'redirected_emergency or hospitalised)'
            USING ERRCODE = 'SN409', DETAIL = 'booking_id';
    END IF;
    SELECT p.given_name || ' ' || p.family_name INTO v_earlier
      FROM message_outbox o JOIN practitioner p ON p.rpps = o.practitioner_rpps
     WHERE o.booking_id = b.id AND o.kind = 'mt_handover';
    IF FOUND THEN
        RAISE EXCEPTION 'the patient was already referred to Dr %', v_earlier
            USING ERRCODE = 'SN409', DETAIL = 'booking_id';
    END IF;
    SELECT l.rpps INTO v_gp
      FROM territory t,
           jsonb_array_elements_text(coalesce(t.settings -> 'new_patient_gps', '[]'))
               WITH ORDINALITY AS l (rpps, position)
     WHERE t.id = p_territory AND l.rpps <> p_rpps
       AND EXISTS (SELECT 1 FROM practitioner p WHERE p.rpps = l.rpps)
     ORDER BY (SELECT count(*) FROM message_outbox o
                WHERE o.territory_id = p_territory AND o.kind = 'mt_handover'
                  AND o.practitioner_rpps = l.rpps), l.position
     LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no other GP of the territory takes new patients (setting new_patient_gps)'
            USING ERRCODE = 'SN409', DETAIL = 'booking_id';
    END IF;
    INSERT INTO message_outbox (territory_id, booking_id, kind, channel, recipient,
                                practitioner_rpps, created_by)
    VALUES (p_territory, b.id, 'mt_handover', 'mssante', v_gp, v_gp, p_actor)
    RETURNING * INTO m;
    PERFORM snp_event(p_territory, p_actor, 'message.queued', b.slot_id, b.request_id, b.id,
                      NULL, NULL, jsonb_build_object('message_id', m.id, 'kind', m.kind,
                                                     'channel', m.channel, 'rpps', v_gp));
    INSERT INTO audit (actor, role, action, request_id, detail)
    VALUES (p_actor, 'gp', 'message.queued', b.request_id,
            jsonb_build_object('message_id', m.id, 'kind', m.kind, 'channel', m.channel,
                               'booking_id', b.id, 'rpps', v_gp));
    RETURN jsonb_build_object('booking_id', b.id, 'practitioner', snp_message_practitioner(m),
                              'message', snp_message_view(m, false));
END $$;

-- What a message says, written when it is claimed (so that an address
-- erased meanwhile, or a practice's new phone, is what goes out): a JSON
-- object {subject, text}.  French, plain text; the SMS fits in about two
-- SMS.  Never the motif's free text nor the outcome's note; the motif's
-- coded label and the outcome only to a doctor (the MT, the referral).
CREATE OR REPLACE FUNCTION snp_fr_when(p_at timestamptz, p_tz text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT (ARRAY['lundi', 'mardi', 'mercredi', 'jeudi', 'vendredi', 'samedi',
                  'dimanche'])[extract(isodow FROM p_at AT TIME ZONE p_tz)::int]
           || ' ' || to_char(p_at AT TIME ZONE p_tz, 'DD/MM/YYYY "à" HH24"h"MI')
$$;

CREATE OR REPLACE FUNCTION snp_message_text(p_message bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m message_outbox;
    v_tz text;
    v_when text;
    v_day text;
    v_territory text;
    v_doctor text;  -- "le Dr Anne Le Guen", or the CSNP's doctor on duty
    v_place text;   -- "Cabinet médical du Port, 3 rue …, 35600 Redon"
    v_phone text;   -- the site's, or ''
    v_patient text; -- the patient's name or initials, for a doctor
    v_born text;
    v_motif text;
    v_outcome text;
    v_text text;
    v_subject text;
    x record;
BEGIN
    SELECT * INTO m FROM message_outbox WHERE id = p_message;
    SELECT b.id AS booking_id, b.request_id, b.outcome, s.starts_at, s.mode, s.rpps, si.kind AS site_kind,
           si.name AS site_name, si.address, si.phone AS site_phone,
           coalesce(c.postal_code || ' ', '') || c.name AS commune, c.name AS commune_name,
           t.name AS territory,
           t.id AS territory_id, p.given_name, p.family_name, r.motif, r.patient_birth_year,
           i.display_name, i.initials, i.birth_date, i.phone AS patient_phone
      INTO x
      FROM booking b
      JOIN slot s ON s.id = b.slot_id
      JOIN site si ON si.id = s.site_id
      JOIN commune c ON c.insee = si.commune_insee
      JOIN territory t ON t.id = s.territory_id
      JOIN request r ON r.id = b.request_id
      LEFT JOIN practitioner p ON p.rpps = s.rpps
      LEFT JOIN patient_identity i ON i.request_id = b.request_id
     WHERE b.id = m.booking_id;
    v_tz := snp_tz(x.territory_id);
    v_when := snp_fr_when(x.starts_at, v_tz);
    v_day := to_char(x.starts_at AT TIME ZONE v_tz, 'DD/MM/YYYY');
    v_territory := x.territory;
    v_doctor := CASE WHEN x.family_name IS NOT NULL
                     THEN 'le Dr ' || x.given_name || ' ' || x.family_name
                     WHEN x.site_kind = 'csnp' THEN 'le médecin de garde du ' || x.site_name
                     ELSE 'un médecin de ' || x.site_name END;
    -- An address that already names its commune is not given it twice.
    v_place := x.site_name || ', ' || x.address
               || CASE WHEN strpos(lower(x.address), lower(x.commune_name)) > 0 THEN ''
                       ELSE ', ' || x.commune END;
    v_phone := coalesce(x.site_phone, '');
    IF m.kind = 'confirmation' THEN
        v_subject := 'Votre rendez-vous du ' || v_when;
        v_text := CASE x.mode
            WHEN 'home' THEN 'Visite à domicile confirmée le ' || v_when || ' par ' || v_doctor
                             || ' (' || x.site_name || ').'
            WHEN 'teleconsultation' THEN 'Téléconsultation confirmée le ' || v_when || ' avec '
                             || v_doctor || ' (' || x.site_name
                             || ') : le lien vous sera envoyé par le cabinet.'
            ELSE 'Rendez-vous confirmé le ' || v_when || ' avec ' || v_doctor || ', '
                 || v_place || '.' END
            || ' Apportez votre carte Vitale, vos ordonnances et traitements en cours.'
            || CASE WHEN v_phone <> '' THEN ' Empêché(e) ? Prévenez le ' || v_phone || '.'
                    ELSE '' END
            || ' Demande n° ' || x.request_id || ', ' || v_territory || '.';
        RETURN jsonb_build_object('subject', v_subject, 'text', v_text);
    END IF;
    v_patient := coalesce(x.display_name, x.initials, '(identité effacée)');
    v_born := CASE WHEN x.birth_date IS NOT NULL
                   THEN 'né(e) le ' || to_char(x.birth_date, 'DD/MM/YYYY')
                   ELSE 'né(e) en ' || x.patient_birth_year END;
    SELECT label_fr INTO v_motif FROM indicator_key_label
     WHERE breakdown = 'motif' AND key = x.motif;
    v_outcome := CASE x.outcome
        WHEN 'attended' THEN 'vu(e) en consultation'
        WHEN 'redirected_emergency' THEN 'adressé(e) aux urgences'
        WHEN 'hospitalised' THEN 'hospitalisé(e)'
        ELSE 'consultation déclarée' END;
    IF m.kind = 'mt_summary' THEN
        v_subject := 'Soins non programmés : ' || v_patient || ', ' || v_day;
        v_text := 'Votre patient(e) ' || v_patient || ', ' || v_born
            || ', a consulté en soins non programmés le ' || v_when || ' : '
            || v_doctor || coalesce(' (RPPS ' || x.rpps || ')', '') || ', ' || v_place || '.'
            || E'\nMotif : ' || coalesce(v_motif, x.motif) || '.'
            || E'\nIssue : ' || v_outcome || '.'
            || CASE WHEN v_phone <> '' THEN E'\nPour tout complément : ' || v_phone || '.'
                    ELSE '' END
            || E'\nMessage de ' || v_territory || ' (snpd).';
    ELSE
        v_subject := 'Patient(e) sans médecin traitant adressé(e) par ' || v_territory;
        v_text := v_doctor || coalesce(' (RPPS ' || x.rpps || ')', '') || ' a vu le ' || v_when
            || ' ' || v_patient || ', ' || v_born
            || ', qui n''a pas de médecin traitant et accepte d''être adressé(e) à un médecin'
            || ' prenant de nouveaux patients.'
            || CASE WHEN x.patient_phone IS NOT NULL
                    THEN E'\nTéléphone du patient : ' || x.patient_phone || '.'
                    WHEN v_phone <> '' THEN E'\nLe cabinet qui l''a vu(e) : ' || v_phone || '.'
                    ELSE '' END
            || E'\nMerci de le ou la contacter si vous pouvez devenir son médecin traitant.'
            || E'\nMessage de ' || v_territory || ' (snpd).';
    END IF;
    RETURN jsonb_build_object('subject', v_subject, 'text', v_text);
END $$;
