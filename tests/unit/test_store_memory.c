/*
 * Unit tests for the in-memory limit store: the store.h rule (atomic
 * all-or-nothing over enforced ops, dry runs, peek, add, strikes) and
 * connection slots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store_memory.h"

static struct store_op gcra(const char *key, uint64_t n, uint64_t period_ms,
                            enum store_op_kind kind)
{
    struct store_op op;
    struct rate r = {.count = n, .period_ms = period_ms};

    memset(&op, 0, sizeof(op));
    op.kind = kind;
    snprintf(op.key, sizeof(op.key), "%s", key);
    gcra_window_from_rate(&r, &op.w);
    op.cost = 1;
    return op;
}

static bool run1(struct memstore *m, struct store_op op,
                 struct store_result *out)
{
    struct store_result r;
    assert_int_equal(memstore_run(m, &op, 1, &r), STORE_DONE);
    if (out)
        *out = r;
    return r.allowed;
}

static void test_n_then_refuse(void **state)
{
    struct memstore *m = memstore_new();
    struct store_result r;

    for (int i = 0; i < 5; i++)
        assert_true(run1(m, gcra("k", 5, 60000, STORE_GCRA), NULL));
    assert_false(run1(m, gcra("k", 5, 60000, STORE_GCRA), &r));
    /* one request frees up every T = 12 s */
    assert_true(r.retry_us > 11e6 && r.retry_us <= 12e6);
    assert_true(run1(m, gcra("other", 5, 60000, STORE_GCRA), NULL));
    memstore_free(m);
}

static void test_all_or_nothing(void **state)
{
    struct memstore *m = memstore_new();
    struct store_op ops[2] = {gcra("minute", 2, 60000, STORE_GCRA),
                              gcra("day", 100, 86400000, STORE_GCRA)};
    struct store_result res[2];
    struct store_key_info info;

    assert_int_equal(memstore_run(m, ops, 2, res), STORE_DONE);
    assert_int_equal(memstore_run(m, ops, 2, res), STORE_DONE);
    assert_true(res[0].allowed && res[1].allowed);
    memstore_show(m, "day", &info);
    double after_two = info.tat_us;
    /* the minute window refuses: the day window must not count it */
    assert_int_equal(memstore_run(m, ops, 2, res), STORE_DONE);
    assert_false(res[0].allowed);
    assert_true(res[1].allowed);
    memstore_show(m, "day", &info);
    assert_true(info.tat_us == after_two);
    memstore_free(m);
}

static void test_dry_run_peek_add(void **state)
{
    struct memstore *m = memstore_new();
    struct store_op dry = gcra("dry", 1, 60000, STORE_GCRA);
    struct store_op real = gcra("real", 10, 60000, STORE_GCRA);
    struct store_op ops[2];
    struct store_result res[2];

    dry.dry_run = true;
    ops[0] = dry;
    ops[1] = real;
    assert_int_equal(memstore_run(m, ops, 2, res), STORE_DONE);
    assert_int_equal(memstore_run(m, ops, 2, res), STORE_DONE);
    assert_false(res[0].allowed);   /* reported ... */
    assert_true(res[1].allowed);    /* ... but does not block */
    /* peek never counts */
    for (int i = 0; i < 5; i++)
        assert_true(run1(m, gcra("p", 1, 60000, STORE_GCRA_PEEK), NULL));
    /* add always counts: two adds exhaust a budget of one */
    run1(m, gcra("f", 1, 60000, STORE_GCRA_ADD), NULL);
    run1(m, gcra("f", 1, 60000, STORE_GCRA_ADD), NULL);
    assert_false(run1(m, gcra("f", 1, 60000, STORE_GCRA_PEEK), NULL));
    memstore_free(m);
}

static void test_strikes(void **state)
{
    struct memstore *m = memstore_new();
    struct store_op op = gcra("s", 1, 60000, STORE_GCRA);
    struct store_result r;

    op.strike_ttl_ms = 60000;
    assert_true(run1(m, op, &r));
    assert_int_equal(r.strikes, 0);
    for (uint64_t i = 1; i <= 3; i++) {
        assert_false(run1(m, op, &r));
        assert_int_equal(r.strikes, i);
    }
    memstore_free(m);
}

static void test_connection_slots(void **state)
{
    struct memstore *m = memstore_new();
    struct store_op acq, rel;
    struct store_result r;

    memset(&acq, 0, sizeof(acq));
    acq.kind = STORE_CONN_ACQUIRE;
    strcpy(acq.key, "c");
    acq.limit = 2;
    rel = acq;
    rel.kind = STORE_CONN_RELEASE;
    assert_true(run1(m, acq, &r));
    assert_int_equal(r.current, 1);
    assert_true(run1(m, acq, &r));
    assert_int_equal(r.current, 2);
    assert_false(run1(m, acq, &r));
    assert_int_equal(r.current, 2);
    run1(m, rel, NULL);
    assert_true(run1(m, acq, NULL));
    /* a refused GCRA op in the same call: the slot is not taken */
    struct store_op ops[2] = {gcra("g", 1, 60000, STORE_GCRA), acq};
    struct store_result res[2];
    strcpy(ops[1].key, "c2");
    memstore_run(m, ops, 2, res);
    memstore_run(m, ops, 2, res);
    assert_false(res[0].allowed);
    struct store_key_info info;
    memstore_show(m, "c2", &info);
    assert_int_equal(info.conn_count, 1);
    memstore_free(m);
}

static void test_many_keys_are_swept(void **state)
{
    struct memstore *m = memstore_new();
    char key[32];
    struct store_op op = gcra("x", 10, 10000, STORE_GCRA); /* T = 1 s */

    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(op.key, sizeof(op.key), "%s", key);
        run1(m, op, NULL);
    }
    assert_true(memstore_size(m) > 19000);
    /* every key's TAT is 1 s ahead: once it has passed, later calls
     * sweep them all away, without a timer */
    usleep(1100 * 1000);
    strcpy(op.key, "busy");
    for (int i = 0; i < 5000; i++)
        run1(m, op, NULL);
    assert_true(memstore_size(m) < 10);
    memstore_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_n_then_refuse),
        cmocka_unit_test(test_all_or_nothing),
        cmocka_unit_test(test_dry_run_peek_add),
        cmocka_unit_test(test_strikes),
        cmocka_unit_test(test_connection_slots),
        cmocka_unit_test(test_many_keys_are_swept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
