/* Durations as users write them: "500ms", "5s", "10m", "1h", "1m30s"; "0" is zero. */
#ifndef FL_DURATION_H
#define FL_DURATION_H

#include <stdint.h>

#include "err.h"

/* Parse into milliseconds. FL_EPARSE on anything else, with the reason in errbuf. */
enum fl_err fl_duration_parse(const char *text, int64_t *ms, char *errbuf)
    __attribute__((warn_unused_result));
/* Format ms compactly ("500ms", "5s", "2m30s") into out. */
void fl_duration_format(int64_t ms, char *out, unsigned outlen);

#endif
