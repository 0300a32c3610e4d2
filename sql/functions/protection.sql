-- Data-protection jobs (docs/data-protection.md): erasing patients' identity,
-- purging old audit rows and delivered outbox rows.
--
-- The current definition of each function, applied by snpd after the
-- migrations whenever this file changes (README, "Migrations and functions").

-- Erases the identity of patients whose erase_after has passed (at most
-- p_limit per call): the patient_identity row goes, and with it the free
-- text the practitioner may have written about the appointment
-- (booking.outcome_note).  The request, its booking and its events stay, so
-- every indicator still counts them.  Records an event identity.erased per
-- territory and one audit row, with counts only.  Returns the counts.
CREATE OR REPLACE FUNCTION snp_identity_erase(p_actor text, p_limit int)
RETURNS TABLE (territory_id text, erased bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    per jsonb;
    total bigint;
BEGIN
    WITH gone AS (
        DELETE FROM patient_identity p
         WHERE p.request_id IN (SELECT x.request_id FROM patient_identity x
                                 WHERE x.erase_after <= now()
                                 ORDER BY x.erase_after, x.request_id
                                 LIMIT greatest(p_limit, 1)
                                   FOR UPDATE SKIP LOCKED)
        RETURNING p.request_id
    ), done AS (
        SELECT g.request_id, r.territory_id FROM gone g JOIN request r ON r.id = g.request_id
    ), notes AS (
        UPDATE booking b SET outcome_note = NULL
          FROM done d
         WHERE b.request_id = d.request_id AND b.outcome_note IS NOT NULL
        RETURNING b.id
    )
    SELECT coalesce(jsonb_object_agg(c.territory_id, c.n), '{}'::jsonb), coalesce(sum(c.n), 0)
      INTO per, total
      FROM (SELECT d.territory_id, count(*) AS n FROM done d GROUP BY d.territory_id) c;
    IF total > 0 THEN
        PERFORM snp_event(c.key, p_actor, 'identity.erased', NULL, NULL, NULL, NULL, NULL,
                          jsonb_build_object('count', c.value::bigint))
           FROM (SELECT j.key, j.value FROM jsonb_each(per) j ORDER BY j.key COLLATE "C") c;
        INSERT INTO audit (actor, role, action, detail)
        VALUES (p_actor, 'system', 'identity.erase',
                jsonb_build_object('erased', total, 'territories', per));
    END IF;
    RETURN QUERY SELECT j.key, j.value::bigint FROM jsonb_each(per) j
                  ORDER BY j.key COLLATE "C";
END $$;

-- Deletes audit rows older than their territory's audit_retention_months
-- (1 to 120), or p_default_months for rows of no territory or territories
-- without the setting; at most p_limit rows per call.  The audit table's
-- guard accepts the deletion only because snp.audit_retention is 'on' for
-- this transaction.  Records one audit row with the count.  Returns the
-- number of rows deleted.
CREATE OR REPLACE FUNCTION snp_audit_purge(p_actor text, p_default_months int, p_limit int)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    shortest int;
BEGIN
    SELECT least(p_default_months,
                 min(snp_setting_int(t.id, 'audit_retention_months', p_default_months, 1, 120)))
      INTO shortest FROM territory t;
    shortest := coalesce(shortest, p_default_months);
    PERFORM set_config('snp.audit_retention', 'on', true);
    DELETE FROM audit
     WHERE id IN (
        SELECT a.id FROM audit a
         WHERE a.at < now() - make_interval(months => shortest)
           AND a.at < now() - make_interval(months => coalesce(
                   snp_setting_int(snp_audit_territory(a), 'audit_retention_months',
                                   p_default_months, 1, 120), p_default_months))
         ORDER BY a.id LIMIT greatest(p_limit, 1));
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('snp.audit_retention', 'off', true);
    IF n > 0 THEN
        INSERT INTO audit (actor, role, action, detail)
        VALUES (p_actor, 'system', 'audit.purge',
                jsonb_build_object('deleted', n, 'default_months', p_default_months));
    END IF;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION snp_outbox_purge(p_actor text, p_days int, p_message_dead_s int, p_limit int)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_pushes bigint;
    v_messages bigint;
    v_given_up bigint;
BEGIN
    UPDATE message_outbox
       SET state = 'dead', recipient = NULL, done_at = now(), lease_until = NULL,
           last_error = coalesce(last_error, 'not sent in time: no sender took it')
     WHERE id IN (
        SELECT m.id FROM message_outbox m
         WHERE m.state = 'pending'
           AND m.created_at < now() - make_interval(secs => p_message_dead_s)
           AND (m.lease_until IS NULL OR m.lease_until < now())
         ORDER BY m.id LIMIT greatest(p_limit, 1)
           FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_given_up = ROW_COUNT;
    DELETE FROM appointment_outbox
     WHERE id IN (
        SELECT o.id FROM appointment_outbox o
         WHERE o.state = 'sent' AND o.done_at < now() - make_interval(days => p_days)
           AND EXISTS (SELECT 1 FROM appointment_outbox l
                        WHERE l.booking_id = o.booking_id AND l.seq > o.seq)
         ORDER BY o.id LIMIT greatest(p_limit, 1)
           FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_pushes = ROW_COUNT;
    DELETE FROM message_outbox
     WHERE id IN (
        SELECT m.id FROM message_outbox m
         WHERE m.state IN ('sent', 'dead') AND m.kind IN ('confirmation', 'mt_summary')
           AND m.done_at < now() - make_interval(days => p_days)
         ORDER BY m.id LIMIT greatest(p_limit, 1)
           FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_messages = ROW_COUNT;
    IF v_pushes + v_messages + v_given_up > 0 THEN
        INSERT INTO audit (actor, role, action, detail)
        VALUES (p_actor, 'system', 'outbox.purge',
                jsonb_build_object('pushes', v_pushes, 'messages', v_messages, 'days', p_days,
                                   'messages_given_up', v_given_up));
    END IF;
    RETURN v_pushes + v_messages + v_given_up;
END $$;
