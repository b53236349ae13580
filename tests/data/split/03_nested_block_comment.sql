/* outer /* inner; */ still comment; */
SELECT 1;
/* a */ /* b */ SELECT 2 /* c */;
