-- AlterTable: what prisma migrate dev writes when a model's @id changes
ALTER TABLE "User" DROP CONSTRAINT "User_pkey",
ADD CONSTRAINT "User_pkey" PRIMARY KEY ("id", "orgId");
ALTER TABLE orders DROP CONSTRAINT IF EXISTS "PK_8f2a1c" CASCADE;
ALTER TABLE orders DROP CONSTRAINT orders_total_check;
ALTER TABLE orders DROP CONSTRAINT orders_pkey_old;
CREATE TABLE t (id int CONSTRAINT t_pkey PRIMARY KEY);
ALTER TABLE t DROP CONSTRAINT t_pkey;
