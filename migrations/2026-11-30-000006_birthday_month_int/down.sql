DROP INDEX customers_birthday_month_idx;
CREATE INDEX customers_birthday_month_idx ON customers ((extract(month FROM birthday)), created_at)
    WHERE deleted_at IS NULL;
