-- flotilla:phase expand
UPDATE users SET full_name = first_name || ' ' || last_name;
