-- hpstore schema for PostgreSQL, version 7: the views read every value as stored in a
-- database whose encoding is not UTF8.
--
-- Version 6's hpstore_jsonb_decoded cut a value's JSON into tokens (escapes, and runs of
-- plain text between them) and took any token of six characters whose second is "u" for
-- an escape \uXXXX, and any of twelve for a surrogate pair, without looking for the
-- backslash: a run of plain text of that shape ("xu00e9" between two escapes) was read as
-- a character (the view gave "ééé" for the value "éxu00e9é"), or failed the query for
-- every row ('"z" is not a valid hexadecimal digit'). Only a token that starts with a
-- backslash is an escape now; the rest of the function is version 6's. A UTF8 database
-- never calls it (its hpstore_jsonb is the cast alone).

DO $migration$
BEGIN
    EXECUTE format($body$
CREATE OR REPLACE FUNCTION %1$I.hpstore_jsonb_decoded(value text) RETURNS jsonb
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
        IF left(token, 1) <> E'\\' THEN  -- a run of plain text, whatever its length
            code := 0;
        ELSIF length(token) = 12 THEN  -- a surrogate pair: one character past U+FFFF
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
END
$migration$;
