DROP INDEX users_email_idx;
DROP INDEX IF EXISTS app.orders_total_idx, orders_created_idx;
CREATE INDEX tmp_idx ON orders (note);
DROP INDEX tmp_idx;
