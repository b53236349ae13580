DROP TABLE "projects";
