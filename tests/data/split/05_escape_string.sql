SELECT E'it\'s; here';
SELECT E'\\';
SELECT 2;
