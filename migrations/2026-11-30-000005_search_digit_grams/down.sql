DROP INDEX customers_search_grams_idx;
DROP FUNCTION search_digit_grams(text);
