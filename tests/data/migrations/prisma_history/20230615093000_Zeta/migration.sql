-- Zeta
SELECT 1;
