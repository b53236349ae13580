SELECT count(*) >= 0 FROM "Comment";
