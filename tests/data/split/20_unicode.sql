-- ünïcødé 😀 comment
CREATE TABLE "tàblé" (nom text DEFAULT 'héllo; wörld 😀');
SELECT '日本語';
