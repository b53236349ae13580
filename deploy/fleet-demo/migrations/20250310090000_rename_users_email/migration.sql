-- Release 2's mistake: the application still reads users.email, and the
-- rollout policy's health check does too. Lint calls this a breaking
-- (contract) change; the canary wave proves it.
ALTER TABLE "users" RENAME COLUMN "email" TO "email_address";
