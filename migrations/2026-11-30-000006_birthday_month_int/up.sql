-- The birthday-month filter's index keyed by an integer instead of `extract`'s numeric:
-- sorting a million numeric keys took 4.1 s of a seed's index rebuilds, integers 2.4 s, and
-- the index is smaller. The filter compares the same expression (customers::queries).
DROP INDEX customers_birthday_month_idx;
CREATE INDEX customers_birthday_month_idx ON customers ((extract(month FROM birthday)::int), created_at)
    WHERE deleted_at IS NULL;
