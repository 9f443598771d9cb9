ALTER TABLE customers DROP COLUMN search_grams;
DROP FUNCTION search_digit_grams(text);
