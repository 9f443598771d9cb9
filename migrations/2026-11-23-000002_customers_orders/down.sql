DROP TABLE audit_log;
DROP TABLE order_lines;
DROP TABLE orders;
DROP TABLE customers;
DROP FUNCTION customers_search_text();
