/* Label sets and the key=value form the CLI takes (lib/label.h). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "label.h"

static void set_ok(struct fl_labels *l, const char *k, const char *v)
{
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(fl_labels_set(l, k, v, err) == FL_OK, "%s=%s: %s", k, v, err);
}

START_TEST(sorted_and_replaced)
{
	struct fl_labels l;
	char out[256];

	fl_labels_init(&l);
	set_ok(&l, "region", "eu");
	set_ok(&l, "ring", "canary");
	set_ok(&l, "az", "1");
	set_ok(&l, "tier", "enterprise");
	ck_assert_uint_eq(l.n, 4);
	ck_assert_str_eq(l.items[0].key, "az");
	ck_assert_str_eq(l.items[1].key, "region");
	ck_assert_str_eq(l.items[2].key, "ring");
	ck_assert_str_eq(l.items[3].key, "tier");
	set_ok(&l, "ring", "early");
	ck_assert_uint_eq(l.n, 4);
	ck_assert_str_eq(fl_labels_get(&l, "ring"), "early");
	ck_assert_ptr_null(fl_labels_get(&l, "rin"));
	ck_assert_ptr_null(fl_labels_get(&l, "zz"));
	ck_assert_str_eq(fl_labels_format(&l, out, sizeof(out)),
	                 "az=1,region=eu,ring=early,tier=enterprise");
	fl_labels_fini(&l);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_ptr_null(l.items);
	fl_labels_fini(&l); /* twice is harmless */
	ck_assert_str_eq(fl_labels_format(&l, out, sizeof(out)), "");
}
END_TEST

static const struct {
	const char *key, *value, *msg;
} bad_sets[] = {
    {"", "x", "empty label key"},
    {"Ring", "x",
     "invalid label key 'Ring': expected a-z and 0-9, then also '_', '.', '-' and '/'"},
    {"_ring", "x", "invalid label key '_ring'"},
    {"-ring", "x", "invalid label key '-ring'"},
    {"ring canary", "x", "invalid label key 'ring canary'"},
    {"ring\n", "x", "invalid label key 'ring\\x0a'"},
    {"r\xc3\xa9gion", "x", "invalid label key 'r\xc3\xa9gion'"},
    {"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "x",
     "is longer than 63 bytes"},
    {"ring",
     "can\x01"
     "ary",
     "label 'ring': value 'can\\x01ary' has a control character"},
    {"ring", "can\x7f", "has a control character"},
    {"ring", "c\xc2\x85", "label 'ring': value 'c\\xc2\\x85' has a control character"},
    {"ring", "\xff", "label 'ring': value '\\xff' is not UTF-8"},
    {"ring", "\xc0\xaf", "is not UTF-8"},
};

START_TEST(set_refuses)
{
	struct fl_labels l;
	char err[FL_ERRBUF_SIZE] = "";

	fl_labels_init(&l);
	set_ok(&l, "a", "1");
	ck_assert_int_eq(fl_labels_set(&l, bad_sets[_i].key, bad_sets[_i].value, err), FL_EINVAL);
	ck_assert_msg(strstr(err, bad_sets[_i].msg) != NULL, "'%s' does not contain '%s'", err,
	              bad_sets[_i].msg);
	ck_assert_uint_eq(l.n, 1); /* unchanged */
	ck_assert_str_eq(fl_labels_get(&l, "a"), "1");
	fl_labels_fini(&l);
}
END_TEST

START_TEST(bounds)
{
	struct fl_labels l;
	char err[FL_ERRBUF_SIZE] = "", key[80], value[300];
	int i;

	fl_labels_init(&l);
	/* 63-byte keys with every allowed character, 255-byte values */
	memset(key, 'k', 63);
	key[63] = '\0';
	memcpy(key, "a0_.-/", 6);
	memset(value, 'v', 255);
	value[255] = '\0';
	set_ok(&l, key, value);
	set_ok(&l, "empty", "");
	ck_assert_str_eq(fl_labels_get(&l, "empty"), "");
	set_ok(&l, "utf8", "caf\xc3\xa9 \xe2\x82\xac");
	value[255] = 'v';
	value[256] = '\0';
	ck_assert_int_eq(fl_labels_set(&l, "long", value, err), FL_EINVAL);
	ck_assert_str_eq(err, "label 'long': value longer than 255 bytes");
	for (i = (int)l.n; i < FL_LABELS_MAX; i++) {
		snprintf(key, sizeof(key), "k%02d", i);
		set_ok(&l, key, "x");
	}
	ck_assert_uint_eq(l.n, FL_LABELS_MAX);
	ck_assert_int_eq(fl_labels_set(&l, "one-more", "x", err), FL_EINVAL);
	ck_assert_str_eq(err, "label 'one-more': too many labels (at most 64)");
	set_ok(&l, "k10", "replacing still works when full");
	fl_labels_fini(&l);
}
END_TEST

START_TEST(match)
{
	struct fl_labels have, want;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(fl_labels_parse("ring=canary,region=eu,tier=free", &have, err), FL_OK);
	fl_labels_init(&want);
	ck_assert(fl_labels_match(&have, &want)); /* empty matches */
	set_ok(&want, "region", "eu");
	ck_assert(fl_labels_match(&have, &want));
	set_ok(&want, "ring", "canary");
	ck_assert(fl_labels_match(&have, &want));
	set_ok(&want, "ring", "early");
	ck_assert(!fl_labels_match(&have, &want));
	set_ok(&want, "ring", "canary");
	set_ok(&want, "az", "1");
	ck_assert(!fl_labels_match(&have, &want)); /* a label have lacks */
	ck_assert(!fl_labels_match(&want, &have));
	fl_labels_fini(&want);
	fl_labels_init(&want);
	set_ok(&want, "region", "");
	ck_assert(!fl_labels_match(&have, &want)); /* "" is a value, not "any" */
	fl_labels_fini(&want);
	fl_labels_fini(&have);
}
END_TEST

START_TEST(copy)
{
	struct fl_labels a, b;
	char out[64];

	fl_labels_init(&a);
	fl_labels_copy(&b, &a);
	ck_assert_uint_eq(b.n, 0);
	fl_labels_fini(&b);
	set_ok(&a, "ring", "canary");
	set_ok(&a, "region", "eu");
	fl_labels_copy(&b, &a);
	fl_labels_fini(&a);
	ck_assert_str_eq(fl_labels_format(&b, out, sizeof(out)), "region=eu,ring=canary");
	fl_labels_fini(&b);
}
END_TEST

START_TEST(parse)
{
	struct fl_labels l;
	char err[FL_ERRBUF_SIZE] = "", out[128];

	ck_assert_int_eq(fl_labels_parse("", &l, err), FL_OK);
	ck_assert_uint_eq(l.n, 0);
	fl_labels_fini(&l);
	ck_assert_int_eq(fl_labels_parse("ring=canary", &l, err), FL_OK);
	ck_assert_str_eq(fl_labels_get(&l, "ring"), "canary");
	fl_labels_fini(&l);
	ck_assert_int_eq(fl_labels_parse("tier=free,ring=,expr=a=b", &l, err), FL_OK);
	ck_assert_str_eq(fl_labels_format(&l, out, sizeof(out)), "expr=a=b,ring=,tier=free");
	fl_labels_fini(&l);

	memset(&l, 0xa5, sizeof(l)); /* out is initialised by the call, also on error */
	ck_assert_int_eq(fl_labels_parse("ring", &l, err), FL_EINVAL);
	ck_assert_str_eq(err, "'ring': expected key=value");
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(fl_labels_parse("ring=a,,b=c", &l, err), FL_EINVAL);
	ck_assert_str_eq(err, "'': expected key=value");
	ck_assert_int_eq(fl_labels_parse("ring=a,", &l, err), FL_EINVAL);
	ck_assert_str_eq(err, "'': expected key=value");
	ck_assert_int_eq(fl_labels_parse("ring=a,ring=b", &l, err), FL_EINVAL);
	ck_assert_str_eq(err, "label 'ring' is given twice");
	ck_assert_uint_eq(l.n, 0);
	ck_assert_ptr_null(l.items);
	ck_assert_int_eq(fl_labels_parse("Ring=a", &l, err), FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "invalid label key 'Ring'"));
	ck_assert_int_eq(fl_labels_parse("=a", &l, err), FL_EINVAL);
	ck_assert_str_eq(err, "empty label key");
	ck_assert_int_eq(fl_labels_parse("a=\x1b[31m", &l, err), FL_EINVAL);
	ck_assert_str_eq(err, "label 'a': value '\\x1b[31m' has a control character");
}
END_TEST

START_TEST(format_cut)
{
	struct fl_labels l;
	char err[FL_ERRBUF_SIZE] = "", out[32];

	ck_assert_int_eq(fl_labels_parse("region=eu,ring=canary", &l, err), FL_OK);
	ck_assert_str_eq(fl_labels_format(&l, out, 16), "region=eu,ri...");
	ck_assert_str_eq(fl_labels_format(&l, out, 4), "...");
	ck_assert_str_eq(fl_labels_format(&l, out, 3), "");
	ck_assert_str_eq(fl_labels_format(&l, out, 1), "");
	ck_assert_str_eq(fl_labels_format(&l, out, 22), "region=eu,ring=canary"); /* fits */
	ck_assert_str_eq(fl_labels_format(&l, out, 21), "region=eu,ring=ca...");
	fl_labels_fini(&l);
	/* never cut inside a UTF-8 character: 'é' is 2 bytes at offsets 10..11 */
	ck_assert_int_eq(fl_labels_parse("a=12345678\xc3\xa9xyzw", &l, err), FL_OK);
	ck_assert_str_eq(fl_labels_format(&l, out, 15), "a=12345678...");
	ck_assert_str_eq(fl_labels_format(&l, out, 16), "a=12345678\xc3\xa9...");
	fl_labels_fini(&l);
}
END_TEST

static Suite *label_suite(void)
{
	Suite *s = suite_create("label");
	TCase *tc = tcase_create("label");

	tcase_add_test(tc, sorted_and_replaced);
	tcase_add_loop_test(tc, set_refuses, 0, (int)(sizeof(bad_sets) / sizeof(bad_sets[0])));
	tcase_add_test(tc, bounds);
	tcase_add_test(tc, match);
	tcase_add_test(tc, copy);
	tcase_add_test(tc, parse);
	tcase_add_test(tc, format_cut);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(label_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
