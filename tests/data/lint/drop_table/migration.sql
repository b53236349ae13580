-- DropTable
DROP TABLE "Old";
