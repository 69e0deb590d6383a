-- hpstore schema for PostgreSQL, version 6: the views read a search's values in a database
-- whose encoding is not UTF8.
--
-- hpstore writes JSON in ASCII: a character past it is an escape (\u00e9, a surrogate pair
-- for an emoji). Cast to jsonb, an escape becomes the character in the database's own
-- encoding, which PostgreSQL does only in a UTF8 database: in a SQL_ASCII database every
-- escape past ASCII failed ("conversion between UTF8 and SQL_ASCII is not supported"), in
-- a LATIN1 one every character LATIN1 has not, so trial_overview and trial_values failed
-- as a whole, for every row, once a single trial held such a value. Such a value is now
-- written in the database's encoding before the cast (in SQL_ASCII as its UTF-8 bytes,
-- which a UTF8 client reads back as they were); a character the encoding cannot hold at
-- all is an error that names the encoding and says what to do. A value all in ASCII takes
-- the cast as before. In a UTF8 database (whose encoding never changes) hpstore_jsonb
-- stays the cast alone: the planner folds it into the views' queries, and a test of the
-- encoding for each row would stop that.
--
-- A SQL function's body is parsed again by each session that runs it: written with '\u0000'
-- (version 1), a session whose standard_conforming_strings is off (a database set so for
-- an old application) read it as a Unicode escape and could not read the views at all.
-- Every backslash below is in an E'' literal, which reads the same either way.
--
-- hpstore_jsonb names the new function by its schema (read when this file runs), as the
-- status log's does since version 5: a session with another search_path reads the views
-- the same.

DO $migration$
BEGIN
    EXECUTE format($body$
CREATE FUNCTION %1$I.hpstore_jsonb_decoded(value text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    token text;
    code integer;
    bytes bytea;
    written text := '';
BEGIN
    -- the JSON text as tokens, in order: a surrogate pair, an escape \uXXXX, any other
    -- escape (\\ among them, so the "u" after an escaped backslash is not taken for one),
    -- and runs of the rest
    FOR token IN
        SELECT m[1] FROM regexp_matches(value, E'(\\\\u[dD][89abAB][0-9a-fA-F]{2}'
                                               '\\\\u[dD][c-fC-F][0-9a-fA-F]{2}|'
                                               '\\\\u[0-9a-fA-F]{4}|\\\\.|[^\\\\]+)',
                                        'g') WITH ORDINALITY AS r(m, n) ORDER BY n
    LOOP
        IF length(token) = 12 THEN  -- a surrogate pair: one character past U+FFFF
            code := 65536 + ((('x' || substr(token, 3, 4))::bit(16)::integer - 55296) << 10)
                    + (('x' || substr(token, 9, 4))::bit(16)::integer - 56320);
        ELSIF length(token) = 6 AND substr(token, 2, 1) = 'u' THEN
            code := ('x' || substr(token, 3, 4))::bit(16)::integer;
        ELSE
            code := 0;
        END IF;
        -- ASCII (the cast reads its escapes in any encoding) and a lone surrogate (jsonb
        -- refuses it in any encoding) stay escapes
        IF code < 128 OR code BETWEEN 55296 AND 57343 THEN
            written := written || token;
            CONTINUE;
        END IF;
        IF code < 2048 THEN
            bytes := decode(lpad(to_hex(49280 | ((code >> 6) << 8) | (code & 63)), 4, '0'),
                            'hex');
        ELSIF code < 65536 THEN
            bytes := decode(lpad(to_hex(14712960 | ((code >> 12) << 16)
                                        | (((code >> 6) & 63) << 8) | (code & 63)), 6, '0'),
                            'hex');
        ELSE
            bytes := decode(to_hex(240 | (code >> 18)), 'hex')
                     || decode(lpad(to_hex(8421504 | (((code >> 12) & 63) << 16)
                                           | (((code >> 6) & 63) << 8) | (code & 63)), 6,
                                    '0'), 'hex');
        END IF;
        BEGIN
            written := written || convert_from(bytes, 'UTF8');
        EXCEPTION WHEN untranslatable_character OR feature_not_supported THEN
            RAISE EXCEPTION USING ERRCODE = 'untranslatable_character', MESSAGE = format(
                'A value of this hpstore search holds the character U+%%s, which the '
                'database''s encoding %%s cannot hold, so the view cannot give it as jsonb. '
                'Read the table''s JSON text instead (SELECT hp_values::text FROM trials), '
                'or copy the search into a database whose encoding is UTF8 (CREATE '
                'DATABASE name ENCODING ''UTF8'' TEMPLATE template0, then hpstore copy).',
                upper(lpad(to_hex(code), greatest(4, length(to_hex(code))), '0')),
                getdatabaseencoding());
        END;
    END LOOP;
    RETURN written::jsonb;
END
$fn$;
$body$, current_schema());
    IF getdatabaseencoding() = 'UTF8' THEN
        EXECUTE format($body$
CREATE OR REPLACE FUNCTION %1$I.hpstore_jsonb(value json) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN strpos(value::text, E'\\u0000') > 0 THEN NULL ELSE value::jsonb END
$fn$;
$body$, current_schema());
    ELSE
        EXECUTE format($body$
CREATE OR REPLACE FUNCTION %1$I.hpstore_jsonb(value json) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN strpos(value::text, E'\\u0000') > 0 THEN NULL
                WHEN value::text !~ E'\\\\u(00[89a-fA-F]|0[1-9a-fA-F]|[1-9a-fA-F])'
                THEN value::jsonb
                ELSE %1$I.hpstore_jsonb_decoded(value::text) END
$fn$;
$body$, current_schema());
    END IF;
END
$migration$;
