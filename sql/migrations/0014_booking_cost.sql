-- What a booking costs the database (issue 13), first part.  Measured with
-- pg_stat_statements (track = all) over bench/booking.pgbench; the figures
-- are in bench/README.md.
--
-- 1. snp_notify_request (0012) finds the booking of a booked or un-booked
--    request by request_id, and no index served that look-up
--    (booking_request_once holds booked rows only and cannot answer max(id)
--    over every status): each booking and each cancellation read the whole
--    booking table, a cost that grew with every booking ever made (7,300
--    rows read per booking after 7,300 bookings).
CREATE INDEX booking_request ON booking (request_id, id);

-- 2. snp_cause, snp_tz and snp_deadline were SQL functions PostgreSQL cannot
--    inline (a volatile set_config, a sub-select, an argument used twice
--    that is itself a look-up), so each call parsed and planned its body
--    again: 26 µs for snp_cause, twice per booking.  As PL/pgSQL functions
--    their plans are kept for the session.  Same arguments, same results.
CREATE OR REPLACE FUNCTION snp_cause(p_cause text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('snp.cause', p_cause, true);
END $$;

CREATE OR REPLACE FUNCTION snp_tz(p_territory text) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_zone text;
BEGIN
    SELECT time_zone INTO v_zone FROM territory WHERE id = p_territory;
    RETURN coalesce(v_zone, 'Europe/Paris');
END $$;

CREATE OR REPLACE FUNCTION snp_deadline(p_urgency text, p_tz text, p_now timestamptz)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN CASE p_urgency
        WHEN 'same_day' THEN (date_trunc('day', p_now AT TIME ZONE p_tz) + interval '1 day')
                             AT TIME ZONE p_tz
        WHEN '24h' THEN p_now + interval '24 hours'
        ELSE p_now + interval '48 hours' END;
END $$;
