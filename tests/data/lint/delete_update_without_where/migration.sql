DELETE FROM sessions;
DELETE FROM sessions WHERE expires_at < now();
UPDATE users SET plan = 'free';
UPDATE users SET plan = 'free' WHERE plan IS NULL;
UPDATE users u SET org_id = o.id FROM orgs o;
DELETE FROM users USING banned;
