-- flotilla:phase expand
TRUNCATE sessions;
