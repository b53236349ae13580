-- flotilla:requires 20230615093000_add_users
-- flotilla:lock-timeout 5s
-- flotilla:statement-timeout 10m

-- CreateTable
CREATE TABLE "Comment" (
    "id" SERIAL NOT NULL,
    "body" TEXT NOT NULL,

    CONSTRAINT "Comment_pkey" PRIMARY KEY ("id")
);
