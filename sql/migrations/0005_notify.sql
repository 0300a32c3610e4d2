-- Change notifications between snpd processes sharing one database.  Every
-- change of a slot or a request's status is announced on channel snp_change
-- at commit, with what another process needs to bring its memory up to date;
-- each process ignores the notifications its own connections caused.
-- Payloads: {"k":"s","id":…,"st":"free","h":request held for,"x":hold expiry
-- (epoch),"r":released?} for slots, {"k":"r","id":…,"st":"waiting"} for
-- requests.

CREATE FUNCTION snp_notify_slot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('snp_change', json_build_object(
        'k', 's', 'id', NEW.id, 'st', NEW.status, 'h', coalesce(NEW.held_for, 0),
        'x', coalesce(extract(epoch FROM NEW.hold_expires_at)::bigint, 0),
        'r', NEW.released_at IS NOT NULL)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER slot_notify AFTER INSERT OR UPDATE OF status, held_for, hold_expires_at,
    released_at ON slot FOR EACH ROW EXECUTE FUNCTION snp_notify_slot();

CREATE FUNCTION snp_notify_request() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('snp_change', json_build_object('k', 'r', 'id', NEW.id,
                                                      'st', NEW.status)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER request_notify AFTER INSERT OR UPDATE OF status ON request
    FOR EACH ROW EXECUTE FUNCTION snp_notify_request();
