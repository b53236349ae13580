DROP TABLE "Comment";
