DROP VIEW paid_orders;
DROP VIEW customer_cards;
