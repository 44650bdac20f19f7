/*
 * tests/test_param_columns.c: nprof_sql_param_columns(), the column each placeholder or
 * literal of a query is compared with or inserted into: comparisons, lists, BETWEEN, UPDATE
 * ... SET, INSERT rows by position, every placeholder style, what stays unknown, and bad
 * arguments and bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "nanoprof/nanoprof.h"
#include "test.h"

/* The items of `sql` as "column:param" separated by spaces, "-" for an unknown column. */
static const char *columns_of(const char *sql)
{
    static char text[2048];
    nprof_sql_param_column items[64];
    size_t n = 0, used = 0;
    int rc = nprof_sql_param_columns(sql, strlen(sql), items, 64, &n);
    if (rc != NPROF_OK)
        return nprof_errname(rc);
    text[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const nprof_sql_param_column *c = &items[i];
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%.*s:%.*s", i ? " " : "",
                                 c->length ? (int)c->length : 1, c->length ? sql + c->offset : "-",
                                 (int)c->param_length, sql + c->param_offset);
    }
    return text;
}

TEST(comparisons_name_the_column_on_their_left)
{
    ASSERT_STR(columns_of("SELECT * FROM users WHERE id = $1 AND u.email <> %s OR age >= -5"),
               "id:$1 email:%s age:-5");
    ASSERT_STR(columns_of("SELECT 1 FROM t WHERE name LIKE ? AND city NOT ILIKE :city"),
               "-:1 name:? city::city");
    ASSERT_STR(columns_of("select * from t where \"Pass Word\" = %(pw)s and `key`='k'"),
               "Pass Word:%(pw)s key:'k'");
    ASSERT_STR(columns_of("SELECT * FROM t WHERE created_at > DATE '2024-01-01' AND ok = TRUE"),
               "created_at:'2024-01-01' ok:TRUE");
    ASSERT_STR(columns_of("SELECT * FROM t WHERE a = $1::int AND b != ?2"), "a:$1 b:?2");
}

TEST(lists_and_between_give_every_item_the_column)
{
    ASSERT_STR(columns_of("SELECT * FROM t WHERE id IN (%s, %s, %s) AND x NOT IN (1, 2)"),
               "id:%s id:%s id:%s x:1 x:2");
    ASSERT_STR(columns_of("SELECT * FROM t WHERE id = ANY($1) AND tag IN %s"), "id:$1 tag:%s");
    ASSERT_STR(columns_of("SELECT * FROM t WHERE ts BETWEEN $1 AND $2 AND n = 3"),
               "ts:$1 ts:$2 n:3");
    /* A subquery in the list: its own comparisons, not the list's column. */
    ASSERT_STR(columns_of("SELECT * FROM t WHERE id IN (SELECT uid FROM s WHERE k = ?) AND z = ?"),
               "k:? z:?");
}

TEST(update_set_and_insert_rows_by_position)
{
    ASSERT_STR(columns_of("UPDATE users SET password = %s, name = %s WHERE id = %s"),
               "password:%s name:%s id:%s");
    ASSERT_STR(columns_of("INSERT INTO users (email, password, age) VALUES (%s, lower(%s), 7), "
                          "($4, $5, $6) ON CONFLICT (email) DO UPDATE SET age = $7"),
               "email:%s password:%s age:7 email:$4 password:$5 age:$6 age:$7");
    ASSERT_STR(columns_of("INSERT INTO public.t (\"a\", b) VALUES (?, ?, ?)"), "a:? b:? -:?");
    ASSERT_STR(columns_of("INSERT INTO t VALUES (1, 2)"), "-:1 -:2");
    ASSERT_STR(columns_of("INSERT INTO t (a) SELECT b FROM s WHERE c = 1"), "c:1");
}

TEST(what_the_sql_does_not_say_stays_unknown)
{
    ASSERT_STR(columns_of("SELECT * FROM t WHERE $1 = id LIMIT 10 OFFSET %s"), "-:$1 -:10 -:%s");
    ASSERT_STR(columns_of("SELECT a + 1, 'x' FROM t WHERE b = c AND d = f(?)"), "-:1 -:'x' -:?");
    ASSERT_STR(columns_of("SELECT 'it''s' -- a = 5\n, /* b = 6 */ 7"), "-:'it''s' -:7");
    ASSERT_STR(columns_of(""), "");
}

TEST(bad_arguments_and_any_bytes)
{
    size_t n = 99;
    nprof_sql_param_column items[2];
    ASSERT_EQ_INT(nprof_sql_param_columns(NULL, 3, items, 2, &n), NPROF_EINVAL);
    ASSERT_EQ_U64(n, 0);
    ASSERT_EQ_INT(nprof_sql_param_columns("a = 1", 5, NULL, 2, &n), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_sql_param_columns("a = 1", 5, items, 2, NULL), NPROF_EINVAL);
    ASSERT_OK(nprof_sql_param_columns(NULL, 0, NULL, 0, &n));
    ASSERT_EQ_U64(n, 0);
    /* More items than room: the first ones, and the count of all. */
    const char *sql = "UPDATE t SET a = 1, b = 2, c = 3";
    ASSERT_EQ_INT(nprof_sql_param_columns(sql, strlen(sql), items, 2, &n), NPROF_ERANGE);
    ASSERT_EQ_U64(n, 3);
    ASSERT_MEM_STR(sql + items[1].offset, items[1].length, "b");
    ASSERT_EQ_INT(nprof_sql_param_columns(sql, strlen(sql), NULL, 0, &n), NPROF_ERANGE);
    ASSERT_EQ_U64(n, 3);
    /* NUL bytes, invalid UTF-8, unterminated strings and deep nesting: offsets stay inside. */
    static const char odd[] = "SELECT \xff\xfe = 'a\0b' AND \"x\0 = $1 AND ((((( IN (";
    ASSERT_OK(nprof_sql_param_columns(odd, sizeof odd - 1, items, 2, &n));
    ASSERT_EQ_U64(n, 1);
    ASSERT_MEM_STR(odd + items[0].offset, items[0].length, "\xff\xfe");
    size_t big = 200000;
    char *deep = malloc(big);
    ASSERT_TRUE(deep != NULL);
    for (size_t i = 0; i < big; i++)
        deep[i] = "(a=1,"[i % 5];
    ASSERT_EQ_INT(nprof_sql_param_columns(deep, big, items, 2, &n), NPROF_ERANGE);
    ASSERT_EQ_U64(n, big / 5);
    ASSERT_MEM_STR(deep + items[1].offset, items[1].length, "a");
    free(deep);
}

int main(void)
{
    RUN(comparisons_name_the_column_on_their_left);
    RUN(lists_and_between_give_every_item_the_column);
    RUN(update_set_and_insert_rows_by_position);
    RUN(what_the_sql_does_not_say_stays_unknown);
    RUN(bad_arguments_and_any_bytes);
    return TEST_SUMMARY();
}
