SELECT $$a;b$$;
SELECT $$;$$, 3;
