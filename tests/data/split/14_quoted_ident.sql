CREATE TABLE "a;b" ("c;d" int, "e""f" text);
SELECT "c;d" FROM "a;b";
