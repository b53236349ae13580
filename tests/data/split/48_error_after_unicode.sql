-- 😀😀😀😀😀😀😀😀😀😀 émojis push byte offsets far past character offsets
-- ünïcødé ünïcødé ünïcødé ünïcødé ünïcødé ünïcødé ünïcødé ünïcødé ünïcødé
SELECT '日本語日本語日本語日本語';
SELECT 1;
SELECT 2;
SELECT * FROM t WHERE;
