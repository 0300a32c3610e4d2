-- Messages to patients and practitioners (issue 15 §4, docs/messages.md):
-- the confirmation a requester sends to the patient by SMS or e-mail, the
-- consultation summary the patient's médecin traitant (MT) gets after an
-- outcome, and the referral of a patient without an MT to a GP taking new
-- patients.
--
-- Like the appointment push (0018), each message is one row of an outbox
-- written in the transaction of what it announces, and sent by snpd
-- (dispatcher/messages.c) at least once through the configured sender (a
-- file by default, or an HTTP gateway).  Unlike it, the row holds the
-- recipient's address, which is personal data: it is erased as soon as the
-- row is sent or given up, and the text is never stored (snpd writes it from
-- the booking when it sends).

-- 1. The outbox.  `state`:
--      pending  to send, from due_at on, unless another process holds its lease
--      sent     the sender accepted it
--      dead     given up after snpd's message_dead_after_s
--    `recipient` is the patient's mobile (E.164) or e-mail address, or an
--    RPPS for the secure messaging of health professionals (MSSanté, whose
--    gateway finds the address in the national directory); NULL once the row
--    is no longer pending.  `practitioner_rpps` stays: the MT or the GP a
--    patient was referred to, which the referral's turn and the indicators read.
CREATE TABLE message_outbox (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    territory_id      text NOT NULL REFERENCES territory (id),
    booking_id        bigint NOT NULL REFERENCES booking (id),
    kind              text NOT NULL CHECK (kind IN ('confirmation', 'mt_summary', 'mt_handover')),
    channel           text NOT NULL CHECK (channel IN ('sms', 'email', 'mssante')),
    recipient         text CHECK (length(recipient) <= 254),
    practitioner_rpps text REFERENCES practitioner (rpps),
    state             text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    due_at            timestamptz NOT NULL DEFAULT now(),
    lease_until       timestamptz,
    attempts          int NOT NULL DEFAULT 0,
    last_error        text,
    done_at           timestamptz,
    CHECK ((state = 'pending') = (recipient IS NOT NULL)),
    CHECK ((kind = 'confirmation') = (practitioner_rpps IS NULL))
);
CREATE INDEX message_outbox_open ON message_outbox (state, due_at) WHERE state <> 'sent';
CREATE INDEX message_outbox_territory ON message_outbox (territory_id, created_at);
-- A booking's messages: booking.list shows its summary and referral, the
-- summary's trigger and the referral look for an earlier one.
CREATE INDEX message_outbox_booking ON message_outbox (booking_id);
-- One referral per booking, and the count of each GP's referrals.
CREATE UNIQUE INDEX message_outbox_one_handover ON message_outbox (booking_id)
    WHERE kind = 'mt_handover';
CREATE INDEX message_outbox_referred ON message_outbox (territory_id, practitioner_rpps)
    WHERE kind = 'mt_handover';

-- The protocol's view of a row (type `message`); last_error only for
-- coordinators and admins (p_errors).
CREATE FUNCTION snp_message_view(m message_outbox, p_errors boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'message_id', m.id, 'kind', m.kind, 'channel', m.channel, 'state', m.state,
        'booking_id', m.booking_id, 'created_at', snp_rfc3339(m.created_at, snp_tz(m.territory_id)),
        'done_at', snp_rfc3339(m.done_at, snp_tz(m.territory_id)), 'attempts', m.attempts,
        'last_error', CASE WHEN p_errors THEN left(m.last_error, 400) END))
$$;

-- The practitioner a message is addressed to (the MT, the GP referred to),
-- as the protocol's type practitioner.
CREATE FUNCTION snp_message_practitioner(m message_outbox) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('rpps', p.rpps, 'family_name', p.family_name,
                              'given_name', p.given_name)
      FROM practitioner p WHERE p.rpps = m.practitioner_rpps
$$;

-- An outcome of a patient seen.
CREATE FUNCTION snp_outcome_seen(p_outcome text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_outcome IN ('attended', 'redirected_emergency', 'hospitalised')
$$;

-- 2. The confirmation (request.confirmation.send): the request must be the
--    organisation's and have a standing booking.  p_to is already checked
--    and normalised by snpd (a French mobile in E.164, or an e-mail address).
--    The address goes nowhere but the row: neither the event nor the audit.
CREATE FUNCTION snp_message_confirmation(p_territory text, p_organisation bigint, p_actor text,
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

-- 3. The MT's summary, queued when an outcome of a patient seen is first
--    reported (a no-show corrected to attended counts then), once per
--    booking, when the request names an MT who is not the practitioner seen
--    and the territory has not turned mt_summary off.  An MT unknown to
--    snpd's reference is skipped (the gateway could not address them either).
CREATE FUNCTION snp_message_mt_summary() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER booking_mt_summary AFTER UPDATE OF outcome ON booking
    FOR EACH ROW WHEN (NEW.outcome IN ('attended', 'redirected_emergency', 'hospitalised')
                       AND (OLD.outcome IS NULL
                            OR OLD.outcome NOT IN ('attended', 'redirected_emergency',
                                                   'hospitalised')))
    EXECUTE FUNCTION snp_message_mt_summary();

-- 4. The referral of a patient without an MT (booking.mt_handover), by the
--    practitioner who saw them, once per booking: to the GP of the
--    territory's new_patient_gps, other than the caller and known to snpd,
--    with the fewest referrals in the territory so far (then the list's order).
CREATE FUNCTION snp_message_mt_handover(p_territory text, p_rpps text, p_actor text,
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

-- 5. What a message says, written when it is claimed (so that an address
--    erased meanwhile, or a practice's new phone, is what goes out): a JSON
--    object {subject, text}.  French, plain text; the SMS fits in about two
--    SMS.  Never the motif's free text nor the outcome's note; the motif's
--    coded label and the outcome only to a doctor (the MT, the referral).
CREATE FUNCTION snp_fr_when(p_at timestamptz, p_tz text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT (ARRAY['lundi', 'mardi', 'mercredi', 'jeudi', 'vendredi', 'samedi',
                  'dimanche'])[extract(isodow FROM p_at AT TIME ZONE p_tz)::int]
           || ' ' || to_char(p_at AT TIME ZONE p_tz, 'DD/MM/YYYY "à" HH24"h"MI')
$$;

CREATE FUNCTION snp_message_text(p_message bigint) RETURNS jsonb
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

-- 6. Indicators (docs/indicators.md): the MT summaries and the referrals,
--    read from the log like every figure (events message.queued).  0019's
--    snp_ind_rows is wrapped, not copied.
CREATE FUNCTION snp_ind_messages_v1(p_territory text, p_from timestamptz, p_to timestamptz,
                                    p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    WITH q AS MATERIALIZED (
        SELECT e.data ->> 'kind' AS kind
          FROM event e
         WHERE e.territory_id = p_territory AND e.kind = 'message.queued'
           AND e.at >= p_from AND e.at < p_to AND e.at < p_as_of
    ), t AS (
        SELECT count(*) FILTER (WHERE kind = 'mt_summary') AS summaries,
               count(*) FILTER (WHERE kind = 'mt_handover') AS handovers,
               count(*) FILTER (WHERE kind = 'confirmation') AS confirmations
          FROM q
    )
    SELECT v.code, 1, '', v.value, v.patient_count
      FROM t, LATERAL (VALUES
        ('mt_summaries_sent', t.summaries::numeric, t.summaries),
        ('patients_referred_to_new_mt', t.handovers::numeric, t.handovers),
        ('confirmations_sent_to_patients', t.confirmations::numeric, t.confirmations)
      ) v (code, value, patient_count)
$$;

ALTER FUNCTION snp_ind_rows(text, timestamptz, timestamptz, timestamptz)
    RENAME TO snp_ind_rows_without_messages;

CREATE FUNCTION snp_ind_rows(p_territory text, p_from timestamptz, p_to timestamptz,
                             p_as_of timestamptz)
RETURNS TABLE (code text, version int, key text, value numeric, patient_count bigint)
LANGUAGE sql STABLE AS $$
    SELECT * FROM snp_ind_rows_without_messages(p_territory, p_from, p_to, p_as_of)
    UNION ALL
    SELECT * FROM snp_ind_messages_v1(p_territory, p_from, p_to, p_as_of)
$$;

INSERT INTO indicator_definition (code, version, section, position, label_fr, formula_fr, unit,
                                  decimals, breakdown, direction, sql_function) VALUES
('mt_summaries_sent', 1, 'publics', 99, 'Comptes rendus adressés au médecin traitant',
 'Consultations dont le compte rendu a été adressé par messagerie sécurisée au médecin traitant du patient (connu de la CPTS et autre que le médecin consulté), à la déclaration de la consultation, pendant la période.',
 'count', 0, '', 'higher', 'snp_ind_messages_v1'),
('patients_referred_to_new_mt', 1, 'publics', 100, 'Patients sans médecin traitant orientés vers un médecin',
 'Patients sans médecin traitant vus en consultation que le médecin consulté a orientés, avec leur accord, vers un médecin du territoire qui accepte de nouveaux patients, pendant la période.',
 'count', 0, '', 'higher', 'snp_ind_messages_v1'),
('confirmations_sent_to_patients', 1, 'publics', 101, 'Confirmations envoyées aux patients',
 'Rendez-vous dont la confirmation a été envoyée au patient par SMS ou courriel à la demande du demandeur, pendant la période (un envoi répété compte à nouveau).',
 'count', 0, '', 'none', 'snp_ind_messages_v1');
