-- Searches for digits (a phone number, the number in an e-mail address) through five-digit
-- grams instead of trigrams. Digits make only 1,000 trigrams, each on a large share of the
-- customers, so the trigram index answers `13000` by intersecting three long lists: 4.7 ms of
-- its 6.9 at a million customers. A term with five digits in a row is instead looked up by
-- its five-digit grams, each on about one customer in a thousand (customers::queries::search).
--
-- The grams of every run of five or more ASCII digits in the search text, as integers
-- (every gram has five digits, so `01300` as 1300 is unambiguous). PL/pgSQL and one split:
-- a set-returning SQL version cost three times as much per row, and the seed computes this
-- for a million rows.
CREATE FUNCTION search_digit_grams(search_text text) RETURNS int[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    run text;
    grams int[] := '{}';
BEGIN
    FOREACH run IN ARRAY regexp_split_to_array(search_text, '[^0-9]+') LOOP
        FOR k IN 1 .. length(run) - 4 LOOP
            grams := grams || substr(run, k, 5)::int;
        END LOOP;
    END LOOP;
    RETURN grams;
END $$;

-- An expression index rather than a stored column: the table does not grow, a bulk load with
-- the index suspended (`rapport seed`) computes the grams once, at the rebuild, and adding it
-- here builds an index instead of rewriting the table (a stored generated column took 86 s
-- and an exclusive lock for a million customers on a 2-core machine; this takes ~23 s, during
-- which writes to customers wait). Changing the function means rebuilding the index.
CREATE INDEX customers_search_grams_idx ON customers USING gin (search_digit_grams(search_text))
    WHERE deleted_at IS NULL;
