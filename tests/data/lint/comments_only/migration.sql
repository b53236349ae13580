-- nothing to do
/* really */
