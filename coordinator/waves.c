/*
 * Wave membership (waves.h): sort the selection by hashed key, then let each
 * wave take its tenants from those left.
 */
#include "waves.h"

#include <math.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

void fl_waves_key(const uint8_t order_hash[32], const char *tenant_id,
                  uint8_t key[FL_WAVES_KEY_LEN])
{
	crypto_hash_sha256_state h;

	crypto_hash_sha256_init(&h);
	crypto_hash_sha256_update(&h, order_hash, 32);
	crypto_hash_sha256_update(&h, (const unsigned char *)tenant_id, strlen(tenant_id));
	crypto_hash_sha256_final(&h, key);
}

size_t fl_waves_percent_count(double percent, size_t n)
{
	double x, r;
	size_t c;

	if (!(percent > 0) || n == 0)
		return 0;
	if (percent >= 100)
		return n;
	x = percent * (double)n / 100.0;
	r = nearbyint(x);
	if (fabs(x - r) <= 1e-9 * (r > 1 ? r : 1))
		x = r;
	c = (size_t)ceil(x);
	return c < n ? c : n;
}

void fl_waves_fini(struct fl_waves *w)
{
	if (w == NULL)
		return;
	free(w->wave);
	free(w->pos);
	free(w->order);
	free(w->counts);
	memset(w, 0, sizeof(*w));
}

struct keyed {
	uint8_t key[FL_WAVES_KEY_LEN];
	const char *id;
	size_t idx;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = memcmp(x->key, y->key, FL_WAVES_KEY_LEN);

	return c != 0 ? c : strcmp(x->id, y->id);
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool listed(const struct fl_wave_selector *s, const char *id)
{
	return s->n_tenants > 0 &&
	       bsearch(&id, s->tenants, s->n_tenants, sizeof(char *), cmp_id) != NULL;
}

enum fl_err fl_waves_compute(const uint8_t order_hash[32], const struct fl_policy *p,
                             const struct fl_waves_tenant *t, size_t n, struct fl_waves *out,
                             char *errbuf)
{
	struct keyed *k = NULL;
	size_t taken = 0, cursor = 0;
	enum fl_err rv = FL_OK;

	memset(out, 0, sizeof(*out));
	if (p->n_waves == 0)
		return fl_errf(errbuf, FL_EINVAL, "policy '%s' has no wave",
		               p->name ? p->name : "");
	if (n >= UINT32_MAX)
		return fl_errf(errbuf, FL_EINVAL, "%zu tenants selected: too many", n);
	out->n = n;
	out->n_waves = p->n_waves;
	out->wave = fl_calloc(n ? n : 1, sizeof(*out->wave));
	out->pos = fl_calloc(n ? n : 1, sizeof(*out->pos));
	out->order = fl_calloc(n ? n : 1, sizeof(*out->order));
	out->counts = fl_calloc(p->n_waves, sizeof(*out->counts));
	k = fl_calloc(n ? n : 1, sizeof(*k));
	for (size_t i = 0; i < n; i++) {
		if (t[i].id == NULL || t[i].id[0] == '\0') {
			rv = fl_errf(errbuf, FL_EINVAL, "tenant %zu of the selection has no id", i);
			goto out;
		}
		fl_waves_key(order_hash, t[i].id, k[i].key);
		k[i].id = t[i].id;
		k[i].idx = i;
		out->wave[i] = FL_WAVES_NONE;
	}
	qsort(k, n, sizeof(*k), cmp_keyed);
	for (size_t i = 0; i < n; i++) {
		/* Equal ids hash equal, so a repeat sorts next to its twin. */
		if (i > 0 && strcmp(k[i - 1].id, k[i].id) == 0) {
			rv = fl_errf(errbuf, FL_EINVAL, "tenant '%s' is in the selection twice",
			             k[i].id);
			goto out;
		}
		out->order[i] = k[i].idx;
		out->pos[k[i].idx] = (uint32_t)i;
	}
	for (size_t w = 0; w < p->n_waves; w++) {
		const struct fl_wave_selector *sel = &p->waves[w].select;

		if (sel->kind == FL_SELECT_PERCENT) {
			size_t want = fl_waves_percent_count(sel->percent, n);

			for (; taken < want && cursor < n; cursor++) {
				size_t i = out->order[cursor];

				if (out->wave[i] != FL_WAVES_NONE)
					continue;
				out->wave[i] = (uint32_t)w;
				out->counts[w]++;
				taken++;
			}
			continue;
		}
		for (size_t c = 0; c < n; c++) {
			size_t i = out->order[c];
			bool take;

			if (out->wave[i] != FL_WAVES_NONE)
				continue;
			if (sel->kind == FL_SELECT_LABELS)
				take = t[i].labels != NULL &&
				       fl_labels_match(t[i].labels, &sel->labels);
			else
				take = listed(sel, t[i].id);
			if (take) {
				out->wave[i] = (uint32_t)w;
				out->counts[w]++;
				taken++;
			}
		}
	}
	out->n_none = n - taken;
out:
	free(k);
	if (rv != FL_OK)
		fl_waves_fini(out);
	return rv;
}
