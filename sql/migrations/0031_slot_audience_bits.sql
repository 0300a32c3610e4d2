-- A slot's audiences also as bits (issue 13), for the start-up's load.
-- Sending the text[] of audiences was a third of PostgreSQL's part of the
-- load: COPY of the page query's columns over 1,000,000 slots took
-- 2.09-2.34 s in binary with the array, 1.44-1.78 s with these bits in its
-- place.  The bits are snpd's own (dispatcher/core/model.h, AUD_*), which
-- tests/dispatcher/core/test_store.c checks against this expression; the
-- array stays the slot's truth, and every other reader keeps reading it.
-- Stored, so computed when a slot is written, not when it is read; adding
-- the column rewrites the table once (7.8 s for 1,000,000 slots here).
ALTER TABLE slot ADD COLUMN audience_bits smallint NOT NULL GENERATED ALWAYS AS (
      (CASE WHEN 'sas' = ANY (audience) THEN 1 ELSE 0 END)
    | (CASE WHEN 'emergency' = ANY (audience) THEN 2 ELSE 0 END)
    | (CASE WHEN 'pharmacy' = ANY (audience) THEN 4 ELSE 0 END)
    | (CASE WHEN 'professional' = ANY (audience) THEN 8 ELSE 0 END)
    | (CASE WHEN 'desk' = ANY (audience) THEN 16 ELSE 0 END)
    | (CASE WHEN 'public' = ANY (audience) THEN 32 ELSE 0 END)) STORED;
