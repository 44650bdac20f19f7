/*
 * tests/test_normalize.c: the SQL normalizer and fingerprint (nanoprof/sql.h).
 *
 * A table of queries as Django, SQLAlchemy, ActiveRecord and drivers write them, with their
 * normalized text in both styles; grouping (what must and must not share a fingerprint); the
 * properties every output has (idempotent, fingerprint of the text equals the original's,
 * within NPROF_SQL_NORMALIZED_MAX) over the table and over thousands of random and mutated
 * inputs; the buffer contract; and garbage: unterminated literals, NUL bytes, invalid UTF-8,
 * 10 MB of SQL and 100,000 nested parentheses, in linear time (by CPU time at two sizes, not
 * by a clock limit).
 */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <stdlib.h>
#include <string.h>

#include "nanoprof/nanoprof.h"
#include "nanoprof/sql.h"
#include "sqlhooks/normalize.h"
#include "test.h"

#define SAME NULL /* the DOLLAR text equals the QMARK text (no literal to number) */

static const struct {
    const char *in, *qmark, *dollar;
} cases[] = {
    {"SELECT \"app_user\".\"id\", \"app_user\".\"name\" FROM \"app_user\" WHERE \"app_user\".\"id\" = 5 LIMIT 21",
     "SELECT \"app_user\".\"id\", \"app_user\".\"name\" FROM \"app_user\" WHERE \"app_user\".\"id\" = ? LIMIT ?",
     "SELECT \"app_user\".\"id\", \"app_user\".\"name\" FROM \"app_user\" WHERE \"app_user\".\"id\" = $1 LIMIT $2"},
    {"SAVEPOINT \"s140234_x1\"",
     "SAVEPOINT ?",
     SAME},
    {"RELEASE SAVEPOINT \"s140234_x1\"",
     "RELEASE SAVEPOINT ?",
     SAME},
    {"ROLLBACK TO SAVEPOINT \"s140234_x1\"",
     "ROLLBACK TO SAVEPOINT ?",
     SAME},
    {"INSERT INTO \"app_user\" (\"name\", \"email\") VALUES ('bob', 'b@x.org') RETURNING \"app_user\".\"id\"",
     "INSERT INTO \"app_user\" (\"name\", \"email\") VALUES (?, ?) RETURNING \"app_user\".\"id\"",
     "INSERT INTO \"app_user\" (\"name\", \"email\") VALUES ($1, $2) RETURNING \"app_user\".\"id\""},
    {"INSERT INTO \"app_tag\" (\"name\") VALUES ('a'), ('b'), ('c') RETURNING \"app_tag\".\"id\"",
     "INSERT INTO \"app_tag\" (\"name\") VALUES (?) RETURNING \"app_tag\".\"id\"",
     "INSERT INTO \"app_tag\" (\"name\") VALUES ($1) RETURNING \"app_tag\".\"id\""},
    {"SELECT \"app_post\".\"id\" FROM \"app_post\" WHERE \"app_post\".\"author_id\" IN (1, 2, 3, 4)",
     "SELECT \"app_post\".\"id\" FROM \"app_post\" WHERE \"app_post\".\"author_id\" IN (?)",
     "SELECT \"app_post\".\"id\" FROM \"app_post\" WHERE \"app_post\".\"author_id\" IN ($1)"},
    {"SELECT COUNT(*) AS \"__count\" FROM \"app_user\" WHERE \"app_user\".\"is_active\"",
     "SELECT COUNT(*) AS \"__count\" FROM \"app_user\" WHERE \"app_user\".\"is_active\"",
     SAME},
    {"UPDATE \"app_user\" SET \"last_login\" = '2024-01-01T10:00:00+00:00'::timestamptz WHERE \"app_user\".\"id\" = 7",
     "UPDATE \"app_user\" SET \"last_login\" = ? WHERE \"app_user\".\"id\" = ?",
     "UPDATE \"app_user\" SET \"last_login\" = $1 WHERE \"app_user\".\"id\" = $2"},
    {"DELETE FROM \"django_session\" WHERE \"django_session\".\"session_key\" IN ('abc', 'def')",
     "DELETE FROM \"django_session\" WHERE \"django_session\".\"session_key\" IN (?)",
     "DELETE FROM \"django_session\" WHERE \"django_session\".\"session_key\" IN ($1)"},
    {"SELECT (1) AS \"a\" FROM \"app_user\" WHERE \"app_user\".\"email\" = 'x' LIMIT 1",
     "SELECT (?) AS \"a\" FROM \"app_user\" WHERE \"app_user\".\"email\" = ? LIMIT ?",
     "SELECT ($1) AS \"a\" FROM \"app_user\" WHERE \"app_user\".\"email\" = $2 LIMIT $3"},
    {"SELECT \"app_user\".\"id\" FROM \"app_user\" WHERE (\"app_user\".\"is_staff\" AND \"app_user\".\"id\" > 10) ORDER BY \"app_user\".\"id\" DESC",
     "SELECT \"app_user\".\"id\" FROM \"app_user\" WHERE (\"app_user\".\"is_staff\" AND \"app_user\".\"id\" > ?) ORDER BY \"app_user\".\"id\" DESC",
     "SELECT \"app_user\".\"id\" FROM \"app_user\" WHERE (\"app_user\".\"is_staff\" AND \"app_user\".\"id\" > $1) ORDER BY \"app_user\".\"id\" DESC"},
    {"SELECT \"app_user\".\"id\" FROM \"app_user\" WHERE \"app_user\".\"name\"::text LIKE '%bob%'",
     "SELECT \"app_user\".\"id\" FROM \"app_user\" WHERE \"app_user\".\"name\"::text LIKE ?",
     "SELECT \"app_user\".\"id\" FROM \"app_user\" WHERE \"app_user\".\"name\"::text LIKE $1"},
    {"SELECT \"app_user\".\"id\" FROM \"app_user\" WHERE UPPER(\"app_user\".\"email\"::text) = UPPER('A@B.C')",
     "SELECT \"app_user\".\"id\" FROM \"app_user\" WHERE UPPER(\"app_user\".\"email\"::text) = UPPER(?)",
     "SELECT \"app_user\".\"id\" FROM \"app_user\" WHERE UPPER(\"app_user\".\"email\"::text) = UPPER($1)"},
    {"SELECT \"a\".\"id\" FROM \"a\" WHERE \"a\".\"id\" = %s",
     "SELECT \"a\".\"id\" FROM \"a\" WHERE \"a\".\"id\" = ?",
     "SELECT \"a\".\"id\" FROM \"a\" WHERE \"a\".\"id\" = $1"},
    {"SELECT \"a\".\"id\" FROM \"a\" WHERE \"a\".\"id\" IN (%s, %s, %s)",
     "SELECT \"a\".\"id\" FROM \"a\" WHERE \"a\".\"id\" IN (?)",
     "SELECT \"a\".\"id\" FROM \"a\" WHERE \"a\".\"id\" IN ($1)"},
    {"SELECT users.id AS users_id, users.name AS users_name FROM users WHERE users.name = %(name_1)s",
     "SELECT users.id AS users_id, users.name AS users_name FROM users WHERE users.name = ?",
     "SELECT users.id AS users_id, users.name AS users_name FROM users WHERE users.name = $1"},
    {"SELECT users.id FROM users WHERE users.id IN (%(id_1_1)s, %(id_1_2)s)",
     "SELECT users.id FROM users WHERE users.id IN (?)",
     "SELECT users.id FROM users WHERE users.id IN ($1)"},
    {"SELECT users.id FROM users WHERE users.name = :param_1 LIMIT :param_2",
     "SELECT users.id FROM users WHERE users.name = ? LIMIT ?",
     "SELECT users.id FROM users WHERE users.name = $1 LIMIT $2"},
    {"INSERT INTO users (name, fullname) VALUES (%(name)s, %(fullname)s) RETURNING users.id",
     "INSERT INTO users (name, fullname) VALUES (?, ?) RETURNING users.id",
     "INSERT INTO users (name, fullname) VALUES ($1, $2) RETURNING users.id"},
    {"SELECT users.id FROM users WHERE users.id = ANY(%(id_1)s)",
     "SELECT users.id FROM users WHERE users.id = ANY(?)",
     "SELECT users.id FROM users WHERE users.id = ANY($1)"},
    {"SELECT users.id FROM users WHERE users.id = ?",
     "SELECT users.id FROM users WHERE users.id = ?",
     "SELECT users.id FROM users WHERE users.id = $1"},
    {"UPDATE users SET name=? WHERE users.id = ?",
     "UPDATE users SET name = ? WHERE users.id = ?",
     "UPDATE users SET name = $1 WHERE users.id = $2"},
    {"SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = $1 LIMIT $2",
     "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = ? LIMIT ?",
     "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = $1 LIMIT $2"},
    {"SELECT `users`.* FROM `users` WHERE `users`.`id` = 1",
     "SELECT `users`.* FROM `users` WHERE `users`.`id` = ?",
     "SELECT `users`.* FROM `users` WHERE `users`.`id` = $1"},
    {"SELECT `users`.* FROM `users` WHERE `users`.`id` IN (1, 2, 3) LIMIT 11",
     "SELECT `users`.* FROM `users` WHERE `users`.`id` IN (?) LIMIT ?",
     "SELECT `users`.* FROM `users` WHERE `users`.`id` IN ($1) LIMIT $2"},
    {"INSERT INTO `users` (`name`, `created_at`) VALUES ('a', '2024-01-01 00:00:00')",
     "INSERT INTO `users` (`name`, `created_at`) VALUES (?, ?)",
     "INSERT INTO `users` (`name`, `created_at`) VALUES ($1, $2)"},
    {"SELECT \"posts\".* FROM \"posts\" WHERE \"posts\".\"user_id\" = $1 ORDER BY \"posts\".\"created_at\" DESC LIMIT $2 OFFSET $3",
     "SELECT \"posts\".* FROM \"posts\" WHERE \"posts\".\"user_id\" = ? ORDER BY \"posts\".\"created_at\" DESC LIMIT ? OFFSET ?",
     "SELECT \"posts\".* FROM \"posts\" WHERE \"posts\".\"user_id\" = $1 ORDER BY \"posts\".\"created_at\" DESC LIMIT $2 OFFSET $3"},
    {"SELECT \"users\".* FROM \"users\" /*application:Blog,controller:users,action:index*/",
     "SELECT \"users\".* FROM \"users\"",
     SAME},
    {"BEGIN",
     "BEGIN",
     SAME},
    {"SELECT [a], [b] FROM [t] WHERE [a] = 1",
     "SELECT [a], [b] FROM [t] WHERE [a] = ?",
     "SELECT [a], [b] FROM [t] WHERE [a] = $1"},
    {"SELECT * FROM t WHERE a = ?1 AND b = ?2",
     "SELECT * FROM t WHERE a = ? AND b = ?",
     "SELECT * FROM t WHERE a = $1 AND b = $2"},
    {"SELECT 1",
     "SELECT ?",
     "SELECT $1"},
    {"SELECT 1.5, .5, 1., 1e-5, 1.5E+10",
     "SELECT ?, ?, ?, ?, ?",
     "SELECT $1, $2, $3, $4, $5"},
    {"SELECT 0x1F, 0o17, 0b101, 1_000_000",
     "SELECT ?, ?, ?, ?",
     "SELECT $1, $2, $3, $4"},
    {"SELECT 'it''s'",
     "SELECT ?",
     "SELECT $1"},
    {"SELECT E'it\\'s', e'\\\\'",
     "SELECT ?, ?",
     "SELECT $1, $2"},
    {"SELECT B'1010', X'1F', N'nat', U&'d\\0061t'",
     "SELECT ?, ?, ?, ?",
     "SELECT $1, $2, $3, $4"},
    {"SELECT $$dollar 'quoted' $$, $fn$ body $$ still $fn$",
     "SELECT ?, ?",
     "SELECT $1, $2"},
    {"SELECT DATE '2024-01-01', TIME '10:00', TIMESTAMP '2024-01-01 10:00', TIMESTAMPTZ '2024-01-01 10:00+02', INTERVAL '1 day'",
     "SELECT ?, ?, ?, ?, ?",
     "SELECT $1, $2, $3, $4, $5"},
    {"SELECT date '2024-01-01'",
     "SELECT ?",
     "SELECT $1"},
    {"SELECT '1'::int, $3::jsonb, 5::bigint, 'x'::varchar(10), '{1}'::int[], 'a'::text::varchar",
     "SELECT ?, ?, ?, ?, ?, ?",
     "SELECT $1, $2, $3, $4, $5, $6"},
    {"SELECT CAST(%s AS date), CAST('x' AS text), CAST(5 AS numeric(10, 2))",
     "SELECT ?, ?, ?",
     "SELECT $1, $2, $3"},
    {"SELECT CAST(x AS date)",
     "SELECT CAST(x AS DATE)",
     SAME},
    {"SELECT x::int, \"y\"::text",
     "SELECT x::int, \"y\"::text",
     SAME},
    {"SELECT TRUE, FALSE, NULL",
     "SELECT ?, ?, NULL",
     "SELECT $1, $2, NULL"},
    {"SELECT * FROM t WHERE a IS TRUE AND b IS NOT FALSE",
     "SELECT * FROM t WHERE a IS TRUE AND b IS NOT FALSE",
     SAME},
    {"SELECT * FROM t WHERE x = -5",
     "SELECT * FROM t WHERE x = ?",
     "SELECT * FROM t WHERE x = $1"},
    {"SELECT a - 5 FROM t",
     "SELECT a - ? FROM t",
     "SELECT a - $1 FROM t"},
    {"SELECT a-5 FROM t",
     "SELECT a - ? FROM t",
     "SELECT a - $1 FROM t"},
    {"SELECT -5, +5, - 5",
     "SELECT ?, ?, ?",
     "SELECT $1, $2, $3"},
    {"SELECT * FROM t WHERE x = -$1",
     "SELECT * FROM t WHERE x = ?",
     "SELECT * FROM t WHERE x = $1"},
    {"SELECT -x FROM t",
     "SELECT - x FROM t",
     SAME},
    {"SELECT * FROM t WHERE a = 1-1",
     "SELECT * FROM t WHERE a = ? - ?",
     "SELECT * FROM t WHERE a = $1 - $2"},
    {"SELECT * FROM t WHERE a BETWEEN -1 AND -2",
     "SELECT * FROM t WHERE a BETWEEN ? AND ?",
     "SELECT * FROM t WHERE a BETWEEN $1 AND $2"},
    {"SELECT f(-1, -2)",
     "SELECT f(?, ?)",
     "SELECT f($1, $2)"},
    {"SELECT 2 * -3",
     "SELECT ? * ?",
     "SELECT $1 * $2"},
    {"SELECT (a) - 1",
     "SELECT (a) - ?",
     "SELECT (a) - $1"},
    {"SELECT * FROM t WHERE a = - - 5",
     "SELECT * FROM t WHERE a = ?",
     "SELECT * FROM t WHERE a = $1"},
    {"SELECT x FROM t WHERE y = CAST(- 5 AS int)",
     "SELECT x FROM t WHERE y = ?",
     "SELECT x FROM t WHERE y = $1"},
    {"SELECT * FROM t WHERE a = $1 AND b = ? AND c = %s AND d = %(d)s AND e = :e",
     "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? AND e = ?",
     "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $3 AND d = $4 AND e = $5"},
    {"SELECT a::int FROM t WHERE b = :b::int",
     "SELECT a::int FROM t WHERE b = ?",
     "SELECT a::int FROM t WHERE b = $1"},
    {"SELECT a[1:2], a[lo:hi] FROM t",
     "SELECT a[? : ?], a[lo : hi] FROM t",
     "SELECT a[$1 : $2], a[lo : hi] FROM t"},
    {"SELECT a % b, a%s FROM t",
     "SELECT a % b, a % s FROM t",
     SAME},
    {"SELECT data ?| array['a'], data ?& array['b'] FROM t",
     "SELECT data ?| ARRAY[?], data ?& ARRAY[?] FROM t",
     "SELECT data ?| ARRAY[$1], data ?& ARRAY[$2] FROM t"},
    {"SELECT * FROM t WHERE id IN (1, 2, 3)",
     "SELECT * FROM t WHERE id IN (?)",
     "SELECT * FROM t WHERE id IN ($1)"},
    {"SELECT * FROM t WHERE id IN (?, ?)",
     "SELECT * FROM t WHERE id IN (?)",
     "SELECT * FROM t WHERE id IN ($1)"},
    {"SELECT * FROM t WHERE id IN ($1)",
     "SELECT * FROM t WHERE id IN (?)",
     "SELECT * FROM t WHERE id IN ($1)"},
    {"SELECT * FROM t WHERE id NOT IN ('a','b')",
     "SELECT * FROM t WHERE id NOT IN (?)",
     "SELECT * FROM t WHERE id NOT IN ($1)"},
    {"SELECT * FROM t WHERE id IN (SELECT id FROM u)",
     "SELECT * FROM t WHERE id IN (SELECT id FROM u)",
     SAME},
    {"SELECT * FROM t WHERE id IN (1, x)",
     "SELECT * FROM t WHERE id IN (?, x)",
     "SELECT * FROM t WHERE id IN ($1, x)"},
    {"SELECT * FROM t WHERE id IN (x, 1)",
     "SELECT * FROM t WHERE id IN (x, ?)",
     "SELECT * FROM t WHERE id IN (x, $1)"},
    {"SELECT * FROM t WHERE id IN (1 + 2)",
     "SELECT * FROM t WHERE id IN (? + ?)",
     "SELECT * FROM t WHERE id IN ($1 + $2)"},
    {"SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))",
     "SELECT * FROM t WHERE (a, b) IN ((?, ?), (?, ?))",
     "SELECT * FROM t WHERE (a, b) IN (($1, $2), ($3, $4))"},
    {"SELECT * FROM t WHERE id = ANY(ARRAY[1,2])",
     "SELECT * FROM t WHERE id = ANY(?)",
     "SELECT * FROM t WHERE id = ANY($1)"},
    {"SELECT * FROM t WHERE id = ANY($1)",
     "SELECT * FROM t WHERE id = ANY(?)",
     "SELECT * FROM t WHERE id = ANY($1)"},
    {"SELECT * FROM t WHERE id = ANY(%s)",
     "SELECT * FROM t WHERE id = ANY(?)",
     "SELECT * FROM t WHERE id = ANY($1)"},
    {"SELECT * FROM t WHERE id = any (array[1, 2, 3])",
     "SELECT * FROM t WHERE id = ANY(?)",
     "SELECT * FROM t WHERE id = ANY($1)"},
    {"SELECT * FROM t WHERE id <> ALL(ARRAY[1, 2])",
     "SELECT * FROM t WHERE id <> ALL(?)",
     "SELECT * FROM t WHERE id <> ALL($1)"},
    {"SELECT ARRAY[1, 2, 3]",
     "SELECT ARRAY[?]",
     "SELECT ARRAY[$1]"},
    {"SELECT ARRAY[[1, 2], [3, 4]]",
     "SELECT ARRAY[?]",
     "SELECT ARRAY[$1]"},
    {"SELECT ARRAY[a, b]",
     "SELECT ARRAY[a, b]",
     SAME},
    {"SELECT ARRAY[]::int[]",
     "SELECT ARRAY[]::int[]",
     SAME},
    {"SELECT ARRAY[1, ARRAY[2]]",
     "SELECT ARRAY[?, ARRAY[?]]",
     "SELECT ARRAY[$1, ARRAY[$2]]"},
    {"INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
     "INSERT INTO t (a, b) VALUES (?, ?)",
     "INSERT INTO t (a, b) VALUES ($1, $2)"},
    {"INSERT INTO t (a) VALUES (1), (2)",
     "INSERT INTO t (a) VALUES (?)",
     "INSERT INTO t (a) VALUES ($1)"},
    {"INSERT INTO t (a, b) VALUES (1, now())",
     "INSERT INTO t (a, b) VALUES (?, now())",
     "INSERT INTO t (a, b) VALUES ($1, now())"},
    {"INSERT INTO t (a, b) VALUES (1, 'a'), (2, now())",
     "INSERT INTO t (a, b) VALUES (?, ?), (?, now())",
     "INSERT INTO t (a, b) VALUES ($1, $2), ($3, now())"},
    {"INSERT INTO t (a, b) VALUES (1, NULL), (NULL, 'b')",
     "INSERT INTO t (a, b) VALUES (?, ?)",
     "INSERT INTO t (a, b) VALUES ($1, $2)"},
    {"INSERT INTO t (a, b) VALUES (DEFAULT, 1)",
     "INSERT INTO t (a, b) VALUES (DEFAULT, ?)",
     "INSERT INTO t (a, b) VALUES (DEFAULT, $1)"},
    {"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = EXCLUDED.a",
     "INSERT INTO t (a) VALUES (?) ON CONFLICT (a) DO UPDATE SET a = EXCLUDED.a",
     "INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO UPDATE SET a = EXCLUDED.a"},
    {"SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v (id, name)",
     "SELECT * FROM (VALUES (?, ?)) AS v(id, name)",
     "SELECT * FROM (VALUES ($1, $2)) AS v(id, name)"},
    {"INSERT INTO t VALUES (1, -2), (3, -4)",
     "INSERT INTO t VALUES (?, ?)",
     "INSERT INTO t VALUES ($1, $2)"},
    {"INSERT INTO t (a, b) VALUES (1, 2), (3)",
     "INSERT INTO t (a, b) VALUES (?, ?), (?)",
     "INSERT INTO t (a, b) VALUES ($1, $2), ($3)"},
    {"INSERT INTO t (a) VALUES ('x'::jsonb), ($2::jsonb)",
     "INSERT INTO t (a) VALUES (?)",
     "INSERT INTO t (a) VALUES ($1)"},
    {"SAVEPOINT s1",
     "SAVEPOINT ?",
     SAME},
    {"RELEASE s1",
     "RELEASE ?",
     SAME},
    {"ROLLBACK TO s1",
     "ROLLBACK TO ?",
     SAME},
    {"ROLLBACK TRANSACTION TO SAVEPOINT s1",
     "ROLLBACK TRANSACTION TO SAVEPOINT ?",
     SAME},
    {"PREPARE stmt_1 (int, text) AS SELECT * FROM t WHERE a = $1 AND b = $2",
     "PREPARE ?(int, text) AS SELECT * FROM t WHERE a = ? AND b = ?",
     "PREPARE ?(int, text) AS SELECT * FROM t WHERE a = $1 AND b = $2"},
    {"EXECUTE stmt_1(1, 'a')",
     "EXECUTE ?(?)",
     "EXECUTE ?($1)"},
    {"EXECUTE stmt_1",
     "EXECUTE ?",
     SAME},
    {"DEALLOCATE stmt_1",
     "DEALLOCATE ?",
     SAME},
    {"DEALLOCATE PREPARE stmt_1",
     "DEALLOCATE ?",
     SAME},
    {"DEALLOCATE ALL",
     "DEALLOCATE ALL",
     SAME},
    {"DECLARE c_1 CURSOR FOR SELECT * FROM t WHERE a = 1",
     "DECLARE ? CURSOR FOR SELECT * FROM t WHERE a = ?",
     "DECLARE ? CURSOR FOR SELECT * FROM t WHERE a = $1"},
    {"DECLARE \"c_2\" BINARY NO SCROLL CURSOR WITH HOLD FOR SELECT 1",
     "DECLARE ? BINARY NO SCROLL CURSOR WITH HOLD FOR SELECT ?",
     "DECLARE ? BINARY NO SCROLL CURSOR WITH HOLD FOR SELECT $1"},
    {"FETCH 100 FROM c_1",
     "FETCH ? FROM ?",
     SAME},
    {"FETCH FORWARD 5 IN \"c_1\"",
     "FETCH FORWARD ? FROM ?",
     SAME},
    {"FETCH NEXT FROM c_1",
     "FETCH NEXT FROM ?",
     SAME},
    {"FETCH c_1",
     "FETCH ?",
     SAME},
    {"MOVE ABSOLUTE 10 IN c_1",
     "MOVE ABSOLUTE ? FROM ?",
     SAME},
    {"CLOSE c_1",
     "CLOSE ?",
     SAME},
    {"CLOSE ALL",
     "CLOSE ALL",
     SAME},
    {"SET search_path TO 'x'",
     "SET search_path = ?",
     "SET search_path = $1"},
    {"SET search_path TO public, \"$user\"",
     "SET search_path = ?",
     "SET search_path = $1"},
    {"SET x = 5",
     "SET x = ?",
     "SET x = $1"},
    {"SET LOCAL statement_timeout = '5s'",
     "SET LOCAL statement_timeout = ?",
     "SET LOCAL statement_timeout = $1"},
    {"SET SESSION lock_timeout TO 1000",
     "SET SESSION lock_timeout = ?",
     "SET SESSION lock_timeout = $1"},
    {"SET TIME ZONE 'UTC'",
     "SET TIME ZONE ?",
     "SET TIME ZONE $1"},
    {"SET TIME ZONE LOCAL",
     "SET TIME ZONE ?",
     "SET TIME ZONE $1"},
    {"SET NAMES 'utf8mb4'",
     "SET NAMES ?",
     "SET NAMES $1"},
    {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
     "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
     SAME},
    {"set application_name='x'; select 1",
     "SET application_name = ?; SELECT ?",
     "SET application_name = $1; SELECT $2"},
    {"UPDATE t SET a = 1, b = 'x'",
     "UPDATE t SET a = ?, b = ?",
     "UPDATE t SET a = $1, b = $2"},
    {"BEGIN; SAVEPOINT a; SELECT 1; RELEASE SAVEPOINT a; COMMIT",
     "BEGIN; SAVEPOINT ?; SELECT ?; RELEASE SAVEPOINT ?; COMMIT",
     "BEGIN; SAVEPOINT ?; SELECT $1; RELEASE SAVEPOINT ?; COMMIT"},
    {"SELECT * FROM t ORDER BY 1",
     "SELECT * FROM t ORDER BY 1",
     SAME},
    {"SELECT * FROM t ORDER BY 2 DESC, 1 ASC",
     "SELECT * FROM t ORDER BY 2 DESC, 1 ASC",
     SAME},
    {"SELECT a, count(*) FROM t GROUP BY 1, 2",
     "SELECT a, count(*) FROM t GROUP BY 1, 2",
     SAME},
    {"SELECT * FROM t ORDER BY x LIMIT 10",
     "SELECT * FROM t ORDER BY x LIMIT ?",
     "SELECT * FROM t ORDER BY x LIMIT $1"},
    {"SELECT * FROM t ORDER BY x, 2 NULLS LAST",
     "SELECT * FROM t ORDER BY x, 2 NULLS LAST",
     SAME},
    {"SELECT * FROM t ORDER BY -1",
     "SELECT * FROM t ORDER BY ?",
     "SELECT * FROM t ORDER BY $1"},
    {"SELECT * FROM t ORDER BY a + 1",
     "SELECT * FROM t ORDER BY a + ?",
     "SELECT * FROM t ORDER BY a + $1"},
    {"SELECT * FROM t WHERE a IS NULL",
     "SELECT * FROM t WHERE a IS NULL",
     SAME},
    {"SELECT * FROM t WHERE a IS NOT NULL",
     "SELECT * FROM t WHERE a IS NOT NULL",
     SAME},
    {"SELECT * FROM (SELECT a FROM t ORDER BY 1 LIMIT 5) s ORDER BY 1",
     "SELECT * FROM (SELECT a FROM t ORDER BY 1 LIMIT ?) s ORDER BY 1",
     "SELECT * FROM (SELECT a FROM t ORDER BY 1 LIMIT $1) s ORDER BY 1"},
    {"SELECT \"Quoted\", MixedCase FROM \"Tab\"",
     "SELECT \"Quoted\", MixedCase FROM \"Tab\"",
     SAME},
    {"SELECT \"select\" FROM t",
     "SELECT \"select\" FROM t",
     SAME},
    {"select  a   from\tt  where b=1",
     "SELECT a FROM t WHERE b = ?",
     "SELECT a FROM t WHERE b = $1"},
    /* Trailing terminators do not change the shape; separators between statements stay. */
    {"SELECT 1;;  -- done", "SELECT ?", "SELECT $1"},
    {"BEGIN; SELECT 1; COMMIT;", "BEGIN; SELECT ?; COMMIT", "BEGIN; SELECT $1; COMMIT"},
    {"SELECT 1 -- trailing comment",
     "SELECT ?",
     "SELECT $1"},
    {"SELECT /* a /* nested */ b */ 1",
     "SELECT ?",
     "SELECT $1"},
    {"SELECT a # b FROM t",
     "SELECT a # b FROM t",
     SAME},
    {"SELECT a/**/FROM t",
     "SELECT a FROM t",
     SAME},
    {"SELECT a<=b, a>=b, a<>b, a!=b, a||b, a->>'x', a->'y', a@>b, a<@b FROM t",
     "SELECT a <= b, a >= b, a <> b, a != b, a || b, a ->> ?, a -> ?, a @> b, a <@ b FROM t",
     "SELECT a <= b, a >= b, a <> b, a != b, a || b, a ->> $1, a -> $2, a @> b, a <@ b FROM t"},
    {"SELECT a=-1",
     "SELECT a = ?",
     "SELECT a = $1"},
    {"SELECT count (*) , lower( x ) FROM t",
     "SELECT count(*), lower(x) FROM t",
     SAME},
    {"SELECT coalesce (a, 1), COALESCE(b,2)",
     "SELECT COALESCE(a, ?), COALESCE(b, ?)",
     "SELECT COALESCE(a, $1), COALESCE(b, $2)"},
    {"SELECT t.a FROM s . t",
     "SELECT t.a FROM s.t",
     SAME},
    {"SELECT a :: int",
     "SELECT a::int",
     SAME},
    {"SELECT x FROM t WHERE a = ( SELECT max ( b ) FROM u )",
     "SELECT x FROM t WHERE a = (SELECT max(b) FROM u)",
     SAME},
    {"SELECT a FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.a = t.a)",
     "SELECT a FROM t WHERE EXISTS (SELECT ? FROM u WHERE u.a = t.a)",
     "SELECT a FROM t WHERE EXISTS (SELECT $1 FROM u WHERE u.a = t.a)"},
    {"WITH cte AS (SELECT 1) SELECT * FROM cte",
     "WITH cte AS (SELECT ?) SELECT * FROM cte",
     "WITH cte AS (SELECT $1) SELECT * FROM cte"},
    {"SELECT a FROM t LEFT JOIN u ON u.id = t.id AND u.k = 'x'",
     "SELECT a FROM t LEFT JOIN u ON u.id = t.id AND u.k = ?",
     "SELECT a FROM t LEFT JOIN u ON u.id = t.id AND u.k = $1"},
    {"SELECT a FROM t FOR UPDATE SKIP LOCKED",
     "SELECT a FROM t FOR UPDATE SKIP LOCKED",
     SAME},
    {"SELECT a FROM t WHERE b ILIKE '%x%' ESCAPE '\\'",
     "SELECT a FROM t WHERE b ILIKE ? ESCAPE ?",
     "SELECT a FROM t WHERE b ILIKE $1 ESCAPE $2"},
    {"CREATE TABLE t (id int PRIMARY KEY, name text DEFAULT 'x')",
     "CREATE TABLE t (id int PRIMARY KEY, name text DEFAULT ?)",
     "CREATE TABLE t (id int PRIMARY KEY, name text DEFAULT $1)"},
    {"CREATE TABLE IF NOT EXISTS public.t (id int)",
     "CREATE TABLE IF NOT EXISTS public.t (id int)",
     SAME},
    {"SELECT a FROM t WHERE b = 1;",
     "SELECT a FROM t WHERE b = ?",
     "SELECT a FROM t WHERE b = $1"},
    {"SELECT x FROM t WHERE ts > now() - INTERVAL '1 hour'",
     "SELECT x FROM t WHERE ts > now() - ?",
     "SELECT x FROM t WHERE ts > now() - $1"},
    {"SELECT x FROM t WHERE ts AT TIME ZONE 'UTC' > '2024-01-01'",
     "SELECT x FROM t WHERE ts AT TIME ZONE ? > ?",
     "SELECT x FROM t WHERE ts AT TIME ZONE $1 > $2"},
    {"SELECT CASE WHEN a = 1 THEN 'x' ELSE 'y' END FROM t",
     "SELECT CASE WHEN a = ? THEN ? ELSE ? END FROM t",
     "SELECT CASE WHEN a = $1 THEN $2 ELSE $3 END FROM t"},
    {"SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t",
     "SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t",
     SAME},
    {"SELECT count(*) FILTER (WHERE a > 1) FROM t",
     "SELECT count(*) FILTER (WHERE a > ?) FROM t",
     "SELECT count(*) FILTER (WHERE a > $1) FROM t"},
    {"SELECT jsonb_build_object('a', 1)",
     "SELECT jsonb_build_object(?, ?)",
     "SELECT jsonb_build_object($1, $2)"},
    {"SELECT a FROM t WHERE b = ANY (SELECT c FROM u)",
     "SELECT a FROM t WHERE b = ANY(SELECT c FROM u)",
     SAME},
    {"SELECT 1 UNION ALL SELECT 2",
     "SELECT ? UNION ALL SELECT ?",
     "SELECT $1 UNION ALL SELECT $2"},
    {"(SELECT 1) UNION ALL (SELECT 2)",
     "(SELECT ?) UNION ALL (SELECT ?)",
     "(SELECT $1) UNION ALL (SELECT $2)"},
    {"SELECT x FROM t LIMIT ALL",
     "SELECT x FROM t LIMIT ALL",
     SAME},
    {"SELECT 'unterminated",
     "SELECT ?",
     "SELECT $1"},
    {"SELECT \"unterminated",
     "SELECT \"unterminated",
     SAME},
    {"SELECT 1 /* unterminated",
     "SELECT ?",
     "SELECT $1"},
    {"SELECT $$unterminated",
     "SELECT ?",
     "SELECT $1"},
    {")))",
     ")))",
     SAME},
    {"((((1))))",
     "((((?))))",
     "(((($1))))"},
    {"SELECT a FROM t WHERE a IN ()",
     "SELECT a FROM t WHERE a IN ()",
     SAME},
    {"SELECT 5::numeric(10)",
     "SELECT ?",
     "SELECT $1"},
    {"SELECT '2024-01-01'::timestamp with time zone",
     "SELECT ?",
     "SELECT $1"},
    {"SELECT 1::double precision",
     "SELECT ?",
     "SELECT $1"},
    {"SELECT x::timestamp with time zone FROM t",
     "SELECT x::TIMESTAMP WITH TIME ZONE FROM t",
     SAME},
    {"SELECT CAST(CAST('1' AS int) AS text)",
     "SELECT ?",
     "SELECT $1"},
    {"SELECT CAST(x AS int), CAST(CAST(x AS int) AS text)",
     "SELECT CAST(x AS int), CAST(CAST(x AS int) AS text)",
     SAME},
    {"insert into \"t\" (\"a\") values ($1), ($2), ($3)",
     "INSERT INTO \"t\" (\"a\") VALUES (?)",
     "INSERT INTO \"t\" (\"a\") VALUES ($1)"},
    {"SELECT a FROM t WHERE a IN (1, 2) AND b IN (3)",
     "SELECT a FROM t WHERE a IN (?) AND b IN (?)",
     "SELECT a FROM t WHERE a IN ($1) AND b IN ($2)"},
    {"INSERT INTO \"t\" (\"a\") SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM \"t\" WHERE \"a\" = 1)",
     "INSERT INTO \"t\" (\"a\") SELECT ? WHERE NOT EXISTS (SELECT ? FROM \"t\" WHERE \"a\" = ?)",
     "INSERT INTO \"t\" (\"a\") SELECT $1 WHERE NOT EXISTS (SELECT $2 FROM \"t\" WHERE \"a\" = $3)"},
    {"SELECT * FROM t WHERE a LIKE 'x%' OR b SIMILAR TO 'y'",
     "SELECT * FROM t WHERE a LIKE ? OR b SIMILAR TO ?",
     "SELECT * FROM t WHERE a LIKE $1 OR b SIMILAR TO $2"},
    {"LISTEN chan",
     "LISTEN chan",
     SAME},
    {"SELECT pg_advisory_lock(12345)",
     "SELECT pg_advisory_lock(?)",
     "SELECT pg_advisory_lock($1)"},
    {"SELECT * FROM t WHERE j @> '{\"a\": 1}'::jsonb",
     "SELECT * FROM t WHERE j @> ?",
     "SELECT * FROM t WHERE j @> $1"},
    {"SELECT * FROM t WHERE tags && ARRAY['a', 'b']::text[]",
     "SELECT * FROM t WHERE tags && ARRAY[?]::text[]",
     "SELECT * FROM t WHERE tags && ARRAY[$1]::text[]"},
};

#define NCASES (sizeof cases / sizeof cases[0])

/* Normalizes into a fresh buffer of exactly NPROF_SQL_NORMALIZED_MAX(len) bytes. */
static char *norm(const char *sql, size_t len, int style, size_t *out_len)
{
    size_t cap = NPROF_SQL_NORMALIZED_MAX(len);
    char *out = malloc(cap);
    if (!out)
        abort();
    if (nprof_sql_normalize(sql, len, style, out, cap, out_len) != 0) {
        fprintf(stderr, "normalize failed within NPROF_SQL_NORMALIZED_MAX (%zu bytes)\n", len);
        free(out);
        return NULL;
    }
    return out;
}

static char *norm_str(const char *sql, int style)
{
    size_t n;
    return norm(sql, strlen(sql), style, &n);
}

/*
 * Checks every property of the output for one input; returns 0 or prints what broke.  Both
 * styles: fits the bound, no NUL or newline, normalizes to itself, same fingerprint as the
 * original, and the fingerprint is XXH3 of the QMARK text; QMARK(DOLLAR(x)) == QMARK(x).
 */
static int check_properties(const char *sql, size_t len)
{
    uint64_t fp = nprof_sql_fingerprint(sql, len);
    size_t nq = 0, nd = 0, n2 = 0, nqd = 0;
    int bad = 0;
    char *q = norm(sql, len, NPROF_SQL_QMARK, &nq), *d = norm(sql, len, NPROF_SQL_DOLLAR, &nd);
    if (!q || !d) {
        bad = 1;
        goto out;
    }
    for (int style = 0; style < 2 && !bad; style++) {
        const char *once = style ? d : q;
        size_t n1 = style ? nd : nq;
        char *twice = norm(once, n1, style, &n2);
        if (n1 + 1 > NPROF_SQL_NORMALIZED_MAX(len) || strlen(once) != n1 ||
            memchr(once, '\n', n1)) {
            fprintf(stderr, "bad length, NUL or newline: \"%s\"\n", once);
            bad = 1;
        } else if (!twice || n2 != n1 || memcmp(once, twice, n1) != 0) {
            fprintf(stderr, "not idempotent (style %d):\n  once:  \"%s\"\n  twice: \"%s\"\n",
                    style, once, twice ? twice : "(null)");
            bad = 1;
        } else if (nprof_sql_fingerprint(once, n1) != fp) {
            fprintf(stderr, "fingerprint of \"%s\" differs from the original's\n", once);
            bad = 1;
        }
        free(twice);
    }
    if (!bad) {
        uint64_t h = XXH3_64bits(q, nq);
        if (fp != (h ? h : 1) || fp == 0) {
            fprintf(stderr, "fingerprint is not XXH3 of \"%s\"\n", q);
            bad = 1;
        }
        /* nprof_sql_shape: the same text and fingerprint in one call, in both styles, also
         * when the text does not fit (then the fingerprint takes its own pass). */
        char small[8];
        for (int style = 0; style < 2 && !bad; style++) {
            size_t cap = NPROF_SQL_NORMALIZED_MAX(len), sn = 0;
            char *out = malloc(cap);
            uint64_t sfp = 0, tfp = 0;
            if (!out)
                abort();
            int rc = nprof_sql_shape(sql, len, style, out, cap, &sn, &sfp);
            int rc2 = nprof_sql_shape(sql, len, style, small, sizeof small, NULL, &tfp);
            const char *want = style ? d : q;
            size_t wn = style ? nd : nq;
            if (rc != 0 || sn != wn || memcmp(out, want, wn) != 0 || sfp != fp ||
                tfp != fp || rc2 != (wn < sizeof small ? 0 : NPROF_ERANGE)) {
                fprintf(stderr, "nprof_sql_shape (style %d) disagrees: rc %d/%d, \"%s\"\n",
                        style, rc, rc2, out);
                bad = 1;
            }
            free(out);
        }
        char *qd = norm(d, nd, NPROF_SQL_QMARK, &nqd);
        if (!qd || nqd != nq || memcmp(qd, q, nq) != 0) {
            fprintf(stderr, "QMARK(DOLLAR(x)) \"%s\" != QMARK(x) \"%s\"\n", qd ? qd : "", q);
            bad = 1;
        }
        free(qd);
    }
out:
    if (bad)
        fprintf(stderr, "  input (%zu bytes): \"%.*s\"\n", len, (int)(len < 300 ? len : 300), sql);
    free(q);
    free(d);
    return bad;
}

TEST(table_has_enough_cases)
{
    ASSERT_INT_OP(NCASES, >=, 150);
}

TEST(table_qmark_style)
{
    int failed = 0;
    for (size_t i = 0; i < NCASES; i++) {
        char *got = norm_str(cases[i].in, NPROF_SQL_QMARK);
        if (!got || strcmp(got, cases[i].qmark) != 0) {
            fprintf(stderr, "case %zu: %s\n  expected: %s\n  got:      %s\n", i, cases[i].in,
                    cases[i].qmark, got ? got : "(null)");
            failed++;
        }
        free(got);
    }
    ASSERT_EQ_INT(failed, 0);
}

TEST(table_dollar_style)
{
    int failed = 0;
    for (size_t i = 0; i < NCASES; i++) {
        const char *want = cases[i].dollar ? cases[i].dollar : cases[i].qmark;
        char *got = norm_str(cases[i].in, NPROF_SQL_DOLLAR);
        if (!got || strcmp(got, want) != 0) {
            fprintf(stderr, "case %zu: %s\n  expected: %s\n  got:      %s\n", i, cases[i].in,
                    want, got ? got : "(null)");
            failed++;
        }
        free(got);
    }
    ASSERT_EQ_INT(failed, 0);
}

TEST(table_outputs_keep_every_property)
{
    int failed = 0;
    for (size_t i = 0; i < NCASES; i++)
        failed += check_properties(cases[i].in, strlen(cases[i].in));
    ASSERT_EQ_INT(failed, 0);
}

TEST(dollar_numbers_follow_output_order_after_collapsing)
{
    char *got = norm_str("SELECT * FROM t WHERE a IN ($7, $8, $9) AND b = $1 AND c IN (1,2)",
                         NPROF_SQL_DOLLAR);
    ASSERT_TRUE(got != NULL);
    ASSERT_STR(got, "SELECT * FROM t WHERE a IN ($1) AND b = $2 AND c IN ($3)");
    free(got);
}

/* Queries in one group must share a fingerprint; the groups must all differ. */
TEST(same_shape_same_fingerprint_different_shape_different_fingerprint)
{
    static const char *const groups[][6] = {
        {"SELECT * FROM users WHERE id = 1", "select * from users where id=2",
         "SELECT *\n  FROM users\n WHERE id = 'x' -- why", "SELECT * FROM users WHERE id = $1",
         "SELECT /* hi */ * FROM users WHERE id = %s", "SeLeCt * FrOm users WhErE id = -3.5e2"},
        {"SELECT * FROM users WHERE name = 1", NULL},
        {"SELECT * FROM users WHERE id IS NULL", NULL},
        {"SELECT * FROM users WHERE id IS NOT NULL", NULL},
        {"SELECT * FROM users WHERE id IN (1, 2, 3)", "SELECT * FROM users WHERE id IN (?)",
         "SELECT * FROM users WHERE id IN ($1,$2,$3,$4,$5,$6,$7,$8)",
         "select * from users where id in (%(id_1)s)", NULL},
        {"SELECT * FROM users WHERE id = ANY(ARRAY[1,2,3])", "SELECT * FROM users WHERE id = ANY($1)",
         "SELECT * FROM users WHERE id = any(%s)", NULL},
        {"SELECT * FROM users ORDER BY 1", NULL},
        {"SELECT * FROM users ORDER BY 2", NULL},
        {"SELECT * FROM users ORDER BY id LIMIT 10", "SELECT * FROM users ORDER BY id LIMIT 20",
         NULL},
        {"SELECT id, name FROM users", NULL},
        {"SELECT name, id FROM users", NULL},
        {"INSERT INTO t (a, b) VALUES (1, 'x')", "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
         "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6)",
         "insert into t (a, b) values (%s, %s)", "INSERT INTO t (a, b) VALUES (NULL, 3)", NULL},
        {"INSERT INTO t (a, b) VALUES (1, now())", NULL},
        {"SAVEPOINT \"s140234_x1\"", "SAVEPOINT \"s99_x7\"", "savepoint s1", NULL},
        {"SET statement_timeout = '5s'", "SET statement_timeout TO 1000", NULL},
        {"SET lock_timeout = '5s'", NULL},
        {"SELECT \"Users\".id FROM \"Users\"", NULL},
        {"SELECT \"users\".id FROM \"users\"", NULL},
    };
    size_t ng = sizeof groups / sizeof groups[0];
    uint64_t first[sizeof groups / sizeof groups[0]];
    for (size_t g = 0; g < ng; g++) {
        first[g] = nprof_sql_fingerprint(groups[g][0], strlen(groups[g][0]));
        for (size_t i = 1; i < 6 && groups[g][i]; i++) {
            uint64_t fp = nprof_sql_fingerprint(groups[g][i], strlen(groups[g][i]));
            if (fp != first[g])
                fprintf(stderr, "group %zu: \"%s\" differs from \"%s\"\n", g, groups[g][i],
                        groups[g][0]);
            ASSERT_EQ_U64(fp, first[g]);
        }
        for (size_t h = 0; h < g; h++) {
            if (first[h] == first[g])
                fprintf(stderr, "groups %zu and %zu share a fingerprint\n", h, g);
            ASSERT_TRUE(first[h] != first[g]);
        }
    }
}

TEST(fingerprint_is_xxh3_of_the_qmark_text_and_never_zero)
{
    const char *sql = "SELECT a FROM t WHERE b = 42";
    const char *text = "SELECT a FROM t WHERE b = ?";
    ASSERT_EQ_U64(nprof_sql_fingerprint(sql, strlen(sql)), XXH3_64bits(text, strlen(text)));
    ASSERT_TRUE(nprof_sql_fingerprint(NULL, 0) != 0);
    ASSERT_EQ_U64(nprof_sql_fingerprint(NULL, 0), nprof_sql_fingerprint("", 0));
    ASSERT_EQ_U64(nprof_sql_fingerprint(NULL, 0), XXH3_64bits("", 0) ? XXH3_64bits("", 0) : 1);
    /* A long text crosses the emitter's 256-byte staging buffer many times. */
    size_t n = 100000;
    char *big = malloc(n);
    ASSERT_TRUE(big != NULL);
    for (size_t i = 0; i < n; i++)
        big[i] = "abcdefghij, "[i % 12];
    size_t qn;
    char *q = norm(big, n, NPROF_SQL_QMARK, &qn);
    ASSERT_TRUE(q != NULL);
    ASSERT_EQ_U64(nprof_sql_fingerprint(big, n), XXH3_64bits(q, qn));
    free(q);
    free(big);
}

/* Up to 1600 bytes the fingerprint hashes a stack copy of the text, beyond it a stream. */
TEST(fingerprint_is_the_same_on_both_sides_of_the_buffered_limit)
{
    char buf[1700];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = "SELECT a1, 'x' FROM t WHERE b IN (1, 2) AND c = $1;\n"[i % 51];
    for (size_t len = 1590; len <= 1610; len++) {
        size_t qn;
        char *q = norm(buf, len, NPROF_SQL_QMARK, &qn);
        ASSERT_TRUE(q != NULL);
        uint64_t h = XXH3_64bits(q, qn);
        ASSERT_EQ_U64(nprof_sql_fingerprint(buf, len), h ? h : 1);
        free(q);
    }
}

TEST(shape_refuses_what_normalize_refuses)
{
    char out[64];
    uint64_t fp = 7;
    size_t n = 9;
    ASSERT_EQ_INT(nprof_sql_shape(NULL, 3, NPROF_SQL_QMARK, out, sizeof out, &n, &fp),
                  NPROF_EINVAL);
    ASSERT_EQ_U64(fp, 0);
    ASSERT_EQ_INT(nprof_sql_shape("SELECT 1", 8, 7, out, sizeof out, &n, &fp), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_sql_shape("SELECT 1", 8, NPROF_SQL_QMARK, NULL, 5, &n, &fp),
                  NPROF_EINVAL);
    /* measuring only (out NULL, cap 0): the length and the fingerprint, NPROF_ERANGE */
    ASSERT_EQ_INT(nprof_sql_shape("select 1", 8, NPROF_SQL_QMARK, NULL, 0, &n, &fp),
                  NPROF_ERANGE);
    ASSERT_EQ_U64(n, 8);
    ASSERT_EQ_U64(fp, nprof_sql_fingerprint("SELECT ?", 8));
    ASSERT_EQ_INT(nprof_sql_shape("select 1", 8, NPROF_SQL_QMARK, out, sizeof out, NULL, NULL),
                  0);
    ASSERT_STR(out, "SELECT ?");
}

TEST(small_buffers_are_cut_terminated_and_report_the_size_needed)
{
    const char *sql = "select a, b from t where c = 1";
    const char *want = "SELECT a, b FROM t WHERE c = ?";
    size_t wl = strlen(want);
    for (size_t cap = 1; cap <= wl + 1; cap++) {
        char buf[64];
        size_t got = 12345;
        memset(buf, 'X', sizeof buf);
        int rc = nprof_sql_normalize(sql, strlen(sql), NPROF_SQL_QMARK, buf, cap, &got);
        ASSERT_EQ_U64(got, wl);
        if (cap <= wl) {
            ASSERT_EQ_INT(rc, NPROF_ERANGE);
            ASSERT_EQ_U64(strlen(buf), cap - 1);
            ASSERT_TRUE(memcmp(buf, want, cap - 1) == 0);
            ASSERT_EQ_INT(buf[cap], 'X'); /* nothing written past cap */
        } else {
            ASSERT_OK(rc);
            ASSERT_STR(buf, want);
        }
    }
    /* A size query: no buffer at all. */
    size_t need = 0;
    ASSERT_EQ_INT(nprof_sql_normalize(sql, strlen(sql), NPROF_SQL_DOLLAR, NULL, 0, &need),
                  NPROF_ERANGE);
    ASSERT_EQ_U64(need, strlen("SELECT a, b FROM t WHERE c = $1"));
    /* out_len may be NULL. */
    char buf[8];
    ASSERT_EQ_INT(nprof_sql_normalize(sql, strlen(sql), NPROF_SQL_QMARK, buf, sizeof buf, NULL),
                  NPROF_ERANGE);
    ASSERT_STR(buf, "SELECT ");
}

TEST(bad_arguments_are_refused)
{
    char buf[16];
    size_t n = 99;
    ASSERT_EQ_INT(nprof_sql_normalize(NULL, 3, NPROF_SQL_QMARK, buf, sizeof buf, &n), NPROF_EINVAL);
    ASSERT_EQ_U64(n, 0);
    ASSERT_EQ_INT(nprof_sql_normalize("a", 1, NPROF_SQL_QMARK, NULL, 4, &n), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_sql_normalize("a", 1, 2, buf, sizeof buf, &n), NPROF_EINVAL);
    ASSERT_EQ_INT(nprof_sql_normalize("a", 1, -1, buf, sizeof buf, &n), NPROF_EINVAL);
    ASSERT_TRUE(strstr(nprof_last_error_detail(), "style") != NULL);
    /* NULL with length 0 is the empty query. */
    ASSERT_OK(nprof_sql_normalize(NULL, 0, NPROF_SQL_QMARK, buf, sizeof buf, &n));
    ASSERT_EQ_U64(n, 0);
    ASSERT_STR(buf, "");
    ASSERT_OK(nprof_sql_normalize("  -- x", 6, NPROF_SQL_DOLLAR, buf, 1, &n));
    ASSERT_STR(buf, "");
}

TEST(the_length_is_the_length_not_the_nul)
{
    /* Only the first 19 bytes count; the rest must not be read. */
    const char *sql = "SELECT a FROM t x=1 WHERE garbage";
    char buf[64];
    size_t n;
    ASSERT_OK(nprof_sql_normalize(sql, 19, NPROF_SQL_QMARK, buf, sizeof buf, &n));
    ASSERT_STR(buf, "SELECT a FROM t x = ?");
    /* NUL bytes are token boundaries, never terminators. */
    static const char nul[] = "SELECT\0a\0FROM t WHERE b = 'x\0y' AND c = 1\0\0";
    ASSERT_OK(nprof_sql_normalize(nul, sizeof nul - 1, NPROF_SQL_QMARK, buf, sizeof buf, &n));
    ASSERT_STR(buf, "SELECT a FROM t WHERE b = ? AND c = ?");
    static const char qnul[] = "SELECT \"a\0b\" FROM t";
    ASSERT_OK(nprof_sql_normalize(qnul, sizeof qnul - 1, NPROF_SQL_QMARK, buf, sizeof buf, &n));
    ASSERT_STR(buf, "SELECT \"a b\" FROM t");
    ASSERT_EQ_INT(check_properties(nul, sizeof nul - 1), 0);
}

TEST(invalid_utf8_passes_through_identifiers_and_vanishes_in_literals)
{
    const char *sql = "SELECT caf\xC3\xA9, na\xFF\xFEme FROM t WHERE x = '\xC0\xAF\xFF' AND y = \"\xE2\x82\"";
    char *got = norm_str(sql, NPROF_SQL_QMARK);
    ASSERT_TRUE(got != NULL);
    ASSERT_STR(got, "SELECT caf\xC3\xA9, na\xFF\xFEme FROM t WHERE x = ? AND y = \"\xE2\x82\"");
    free(got);
    ASSERT_EQ_INT(check_properties(sql, strlen(sql)), 0);
}

TEST(unterminated_literals_and_comments_take_the_rest)
{
    static const char *const in[] = {
        "SELECT 'abc", "SELECT E'abc\\", "SELECT $tag$ abc $tag", "SELECT \"abc",
        "SELECT `abc", "SELECT 1 /* /* */", "SELECT 1 -- x", "SELECT U&'x", "SELECT x'",
        "SELECT %(na", "SELECT CAST(1 AS", "SELECT a IN (1, 2", "INSERT INTO t VALUES (1), (",
        "SELECT ARRAY[1, 2", "SELECT ANY(ARRAY[", "SET x = ", "SAVEPOINT", "FETCH", "- - -",
    };
    static const char *const want[] = {
        "SELECT ?", "SELECT ?", "SELECT ?", "SELECT \"abc", "SELECT `abc", "SELECT ?",
        "SELECT ?", "SELECT ?", "SELECT ?", "SELECT % (na", "SELECT CAST(? AS",
        "SELECT a IN (?, ?", "INSERT INTO t VALUES (?), (", "SELECT ARRAY[?, ?",
        "SELECT ANY(ARRAY[", "SET x =", "SAVEPOINT", "FETCH", "- - -",
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char *got = norm_str(in[i], NPROF_SQL_QMARK);
        ASSERT_TRUE(got != NULL);
        if (strcmp(got, want[i]) != 0)
            fprintf(stderr, "input \"%s\"\n", in[i]);
        ASSERT_STR(got, want[i]);
        free(got);
        ASSERT_EQ_INT(check_properties(in[i], strlen(in[i])), 0);
    }
}

TEST(no_newline_ever_reaches_the_output)
{
    const char *sql = "SELECT \"multi\nline\r\tname\", `a\nb`\nFROM t\r\nWHERE x = 'a\nb'";
    char *got = norm_str(sql, NPROF_SQL_QMARK);
    ASSERT_TRUE(got != NULL);
    ASSERT_STR(got, "SELECT \"multi line  name\", `a b` FROM t WHERE x = ?");
    free(got);
}

/* Inputs the fuzzer once found breaking idempotence; each shows a rule that must hold. */
TEST(former_fuzzer_findings_stay_fixed)
{
    static const char *const in[] = {
        "PREPARE +oo(int) AS SELECT $2",     /* a dropped unary plus must not eat the name */
        "SELECT ARRAY+[1,2], ARRAY[[3,4]]",  /* ... nor separate ARRAY from its '[' */
        "SELECT 5::+bigint, CAST +(5 AS int)", /* ... nor hide a cast from the combiner */
        "MOVE CAST(x AS ON)",                /* in FETCH / MOVE a word inside CAST is a name */
        "SAVEPOINT x::int",
        "SELECT 1 2 - 3",
        "SELECT a[ b ], = [ 'x' ]",
        "ORDER BY 1 .x, 1 :: (",
        "SELECT x FROM t WHERE a = ANY(ARRAY[1], 5) AND b IN (ARRAY[1])",
        "INSERT INTO t VALUES (NULL::int, 2), (CAST(NULL AS int))",
        "6::IN++++::IN++++:\377",           /* a cast to a keyword-named type ends an operand */
        "SELECT 6::in + 1, 'x'::all+2",
        "SELECT at.b'01', at.x FROM t",      /* x.b'01' reads as x.?, its normal form */
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        ASSERT_EQ_INT(check_properties(in[i], strlen(in[i])), 0);
    /* As the fuzzer found it: the same word, AT, once as a keyword and once before x.b'..'. */
    static const char found[] = "\334\001\000\366\017\017aT\022\n\017\017aT.b'bbbbbbbb'";
    ASSERT_EQ_INT(check_properties(found, sizeof found - 1), 0);
    char *got = norm_str("PREPARE +oo(int) AS SELECT $2", NPROF_SQL_QMARK);
    ASSERT_TRUE(got != NULL);
    ASSERT_STR(got, "PREPARE ?(int) AS SELECT ?");
    free(got);
    got = norm_str("MOVE CAST(x AS ON)", NPROF_SQL_QMARK);
    ASSERT_TRUE(got != NULL);
    ASSERT_STR(got, "MOVE ?");
    free(got);
    got = norm_str("SELECT at.b'01', at.x FROM t", NPROF_SQL_QMARK);
    ASSERT_TRUE(got != NULL);
    ASSERT_STR(got, "SELECT AT.?, at.x FROM t");
    free(got);
    got = norm_str("SELECT 6::in + 1", NPROF_SQL_QMARK);
    ASSERT_TRUE(got != NULL);
    ASSERT_STR(got, "SELECT ? + ?");
    free(got);
}

/* ---- random and mutated inputs ---------------------------------------------------- */

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static const char *const fragments[] = {
    "SELECT", "select", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE",
    "FALSE", "ANY", "ALL", "SOME", "ARRAY", "VALUES", "INSERT", "INTO", "UPDATE", "SET", "CAST",
    "AS", "ORDER", "GROUP", "BY", "LIMIT", "OFFSET", "DATE", "INTERVAL", "TIME", "ZONE",
    "TIMESTAMP", "WITH", "SAVEPOINT", "RELEASE", "ROLLBACK", "TO", "PREPARE", "EXECUTE",
    "DEALLOCATE", "DECLARE", "CURSOR", "FETCH", "MOVE", "CLOSE", "LOCAL", "NAMES", "DEFAULT",
    "END", "CASE", "WHEN", "users", "id", "\"Quoted\"", "`tick`", "x", "t", "int", "text",
    "numeric", "double", "precision", "varying", "1", "2", "0", "42", "1.5", ".5", "1e5",
    "0x1F", "1_000", "'str'", "'it''s'", "E'\\''", "$$d$$", "$q$x$q$", "$1", "$2", "?", "?1",
    "%s", "%(n)s", ":name", "(", ")", "(", ")", "[", "]", ",", ",", ",", ".", ";", "::", "-",
    "-", "+", "*", "=", "<>", "<=", "||", "->>", "?|", "#", ":", ":=", "%", "$", "@", "/",
    "--c\n", "/*c*/", "/*", "\"", "'", "`", "\n", "\t", " ", "\xC3\xA9", "\xFF", "\0",
};

static size_t gen_soup(char *buf, size_t cap)
{
    size_t n = 0, tokens = 1 + rng() % 40;
    size_t nf = sizeof fragments / sizeof fragments[0];
    for (size_t i = 0; i < tokens; i++) {
        const char *f = fragments[rng() % nf];
        size_t fl = f[0] ? strlen(f) : 1; /* the "\0" fragment is one NUL byte */
        if (n + fl + 1 >= cap)
            break;
        memcpy(buf + n, f, fl);
        n += fl;
        if (rng() % 3)
            buf[n++] = ' ';
    }
    return n;
}

static size_t mutate(char *buf, size_t n, size_t cap)
{
    size_t edits = 1 + rng() % 4;
    for (size_t e = 0; e < edits; e++) {
        size_t at = n ? rng() % n : 0;
        switch (rng() % 5) {
        case 0: /* replace a byte */
            if (n)
                buf[at] = (char)(rng() % 256);
            break;
        case 1: /* insert a byte */
            if (n + 1 < cap) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = "'\"$()[],;:-/*?%\n\0 "[rng() % 19];
                n++;
            }
            break;
        case 2: /* delete a byte */
            if (n) {
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
            }
            break;
        case 3: /* truncate */
            n = at;
            break;
        default: /* duplicate a chunk */ {
            size_t len = n - at < 20 ? n - at : 20;
            if (n + len < cap) {
                memmove(buf + at + len, buf + at, n - at);
                n += len;
            }
        }
        }
    }
    return n;
}

TEST(random_and_mutated_inputs_keep_every_property)
{
    char buf[2048];
    int failed = 0;
    rng_state = 20240601;
    for (int i = 0; i < 6000 && failed < 5; i++) {
        size_t n = gen_soup(buf, sizeof buf);
        failed += check_properties(buf, n);
    }
    for (int i = 0; i < 6000 && failed < 5; i++) {
        const char *base = cases[rng() % NCASES].in;
        size_t n = strlen(base);
        memcpy(buf, base, n);
        n = mutate(buf, n, sizeof buf);
        failed += check_properties(buf, n);
    }
    ASSERT_EQ_INT(failed, 0);
}

/* ---- size and time ---------------------------------------------------------------- */

TEST(output_fits_the_bound_in_the_worst_cases)
{
    /* "???..." in DOLLAR style: every 1-byte literal becomes " $n"; past $65535, "?". */
    static const char *const units[] = {"?", "1,", "$1", "?,", "a=?", "IN?", "-?", "x"};
    size_t n = 140000;
    char *sql = malloc(n);
    ASSERT_TRUE(sql != NULL);
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t ul = strlen(units[u]);
        for (size_t i = 0; i < n; i++)
            sql[i] = units[u][i % ul];
        for (int style = 0; style < 2; style++) {
            size_t need = 0;
            int rc = nprof_sql_normalize(sql, n, style, NULL, 0, &need);
            ASSERT_EQ_INT(rc, NPROF_ERANGE);
            ASSERT_TRUE(need + 1 <= NPROF_SQL_NORMALIZED_MAX(n));
            if (style == NPROF_SQL_QMARK)
                ASSERT_TRUE(2 * need <= 5 * n + 2); /* QMARK stays below 2.5x */
        }
    }
    for (size_t i = 0; i < n; i++)
        sql[i] = '?';
    size_t len;
    char *d = norm(sql, n, NPROF_SQL_DOLLAR, &len);
    ASSERT_TRUE(d != NULL);
    ASSERT_TRUE(strstr(d, " $65535 ? ?") != NULL);
    ASSERT_TRUE(strstr(d, "$65536") == NULL);
    free(d);
    free(sql);
}

/*
 * Linear time, asserted without a clock limit: a fixed number of seconds fails on a loaded
 * 2-core machine and under sanitizers, while what we want to know is how the cost grows.
 * Each input is costed at two sizes, 64 times apart, in CPU time of this thread (time spent
 * waiting for a core is not counted), the cheapest of a few runs (of two for the larger, which
 * under TSan costs seconds).  A linear pass costs about 64 times more on the larger input; a
 * quadratic one 4096 times.  The bound, 512, is 8 times from each: wide enough for the larger
 * input running from memory while the smaller one runs from cache, and for whatever a busy
 * neighbour does to the caches.
 */
#define LINEAR_SCALE 64
#define LINEAR_BOUND 512.0

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum { COST_NORMALIZE, COST_FINGERPRINT };

/* The cheapest CPU time of `runs` normalizations (into out, of cap bytes) or fingerprints
 * of sql[0..n); at least 1 ns, so that a ratio is always defined. */
static uint64_t cpu_cost(int what, const char *sql, size_t n, char *out, size_t cap, int runs)
{
    uint64_t best = UINT64_MAX;
    for (int r = 0; r < runs; r++) {
        size_t len;
        uint64_t t0 = thread_cpu_ns();
        if (what == COST_NORMALIZE)
            (void)nprof_sql_normalize(sql, n, NPROF_SQL_DOLLAR, out, cap, &len);
        else
            (void)nprof_sql_fingerprint(sql, n);
        uint64_t t = thread_cpu_ns() - t0;
        best = t < best ? t : best;
    }
    return best ? best : 1;
}

/* Whether normalizing and fingerprinting `large` costs at most LINEAR_BOUND times what
 * `small` (the same kind of input, LINEAR_SCALE times shorter) costs; prints the figures
 * under `label` when `show` is set or the check fails. */
static int grows_linearly(const char *label, int show, const char *small, size_t small_n,
                          const char *large, size_t large_n)
{
    size_t cap = NPROF_SQL_NORMALIZED_MAX(large_n);
    char *out = malloc(cap);
    if (!out)
        return 0;
    int ok = 1;
    for (int what = COST_NORMALIZE; what <= COST_FINGERPRINT; what++) {
        uint64_t s = cpu_cost(what, small, small_n, out, cap, 7);
        uint64_t l = cpu_cost(what, large, large_n, out, cap, 2);
        double ratio = (double)l / (double)s;
        int fine = ratio < LINEAR_BOUND;
        if (show || !fine)
            fprintf(fine ? stdout : stderr,
                    "     %s: %s %zu bytes %.3f ms, %zu bytes %.3f ms (CPU): %.0fx%s\n", label,
                    what == COST_NORMALIZE ? "normalize" : "fingerprint", small_n, s / 1e6,
                    large_n, l / 1e6, ratio, fine ? "" : ", NOT LINEAR");
        ok &= fine;
    }
    free(out);
    return ok;
}

TEST(ten_megabytes_of_sql_cost_linear_time)
{
    static const char *const parts[] = {
        "SELECT a, b, \"c\" FROM t WHERE x = 1 AND y IN (1, 2, 3) ", "AND z = 'abc''def' ",
        "/* comment */ ", "OR w = $1 ", "-- c\n", "ORDER BY 1 LIMIT 10 ",
        "VALUES (1, 'a'), (2, 'b') ", "AND f(CAST('1' AS int), -5::bigint) ",
    };
    size_t n = 10u << 20, at = 0;
    char *sql = malloc(n);
    ASSERT_TRUE(sql != NULL);
    rng_state = 7;
    while (at < n) {
        const char *p = parts[rng() % (sizeof parts / sizeof parts[0])];
        size_t pl = strlen(p);
        if (pl > n - at)
            pl = n - at;
        memcpy(sql + at, p, pl);
        at += pl;
    }
    /* The first 160 KB of the same mixture is the smaller input. */
    ASSERT_TRUE(grows_linearly("mixed SQL", 1, sql, n / LINEAR_SCALE, sql, n));
    /* One 10 MB string literal and one 10 MB identifier (their prefixes are left open: an
     * unterminated literal takes the rest, which costs the same scan). */
    size_t len;
    char *out = malloc(NPROF_SQL_NORMALIZED_MAX(n));
    ASSERT_TRUE(out != NULL);
    memset(sql, 'x', n);
    sql[0] = '\'';
    sql[n - 1] = '\'';
    ASSERT_OK(nprof_sql_normalize(sql, n, NPROF_SQL_QMARK, out, NPROF_SQL_NORMALIZED_MAX(n), &len));
    ASSERT_STR(out, "?");
    ASSERT_TRUE(grows_linearly("one literal", 1, sql, n / LINEAR_SCALE, sql, n));
    sql[0] = 'x';
    sql[n - 1] = 'x';
    ASSERT_OK(nprof_sql_normalize(sql, n, NPROF_SQL_QMARK, out, NPROF_SQL_NORMALIZED_MAX(n), &len));
    ASSERT_EQ_U64(len, n);
    ASSERT_TRUE(grows_linearly("one identifier", 1, sql, n / LINEAR_SCALE, sql, n));
    free(out);
    free(sql);
}

/* prefix * count + middle + suffix * count, in a buffer the caller frees; *n gets its length. */
static char *nested(const char *prefix, const char *middle, const char *suffix, size_t count,
                    size_t *n)
{
    size_t pl = strlen(prefix), ml = strlen(middle), sl = strlen(suffix), at = 0;
    *n = count * (pl + sl) + ml;
    char *sql = malloc(*n);
    if (!sql)
        abort();
    for (size_t i = 0; i < count; i++, at += pl)
        memcpy(sql + at, prefix, pl);
    memcpy(sql + at, middle, ml);
    at += ml;
    for (size_t i = 0; i < count; i++, at += sl)
        memcpy(sql + at, suffix, sl);
    return sql;
}

TEST(deep_nesting_is_linear_and_bounded)
{
    static const struct {
        const char *prefix, *middle, *suffix;
    } shapes[] = {
        {"(", "1", ")"},
        {"[", "1", "]"},
        {"ARRAY[", "1", "]"},
        {"x IN (", "1", ")"},
        {"ANY(ARRAY[", "1", "])"},
        {"CAST(", "1", " AS int)"},
        {"CAST(", "x", " AS int)"},
        {"CAST(-", "1", " AS int) AS"},
        {"- ", "5", ""},
        {"- ", "x", ""},
        {"VALUES (", "1", "), (1)"},
        {"f(", "", ")"},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        /* The smaller input is the same shape nested 64 times less deep, not a prefix of it. */
        size_t count = 100000, n, small_n;
        char *sql = nested(shapes[i].prefix, shapes[i].middle, shapes[i].suffix, count, &n);
        char *small = nested(shapes[i].prefix, shapes[i].middle, shapes[i].suffix,
                             count / LINEAR_SCALE, &small_n);
        char label[64];
        snprintf(label, sizeof label, "shape %s%s%s", shapes[i].prefix, shapes[i].middle,
                 shapes[i].suffix);
        int linear = grows_linearly(label, 0, small, small_n, sql, n);
        int props = check_properties(sql, n < 20000 ? n : 20000);
        free(small);
        free(sql);
        ASSERT_EQ_INT(props, 0);
        ASSERT_TRUE(linear);
    }
    char out[64];
    size_t len;
    const char *inner = "SELECT ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
                        "(((((((((((((((x IN (1, 2))))))))))))))))))))))))))))))))))))))))))))))"
                        ")))))))))))))))))))))))))))";
    /* Nesting deeper than the frame array still works; the list there just stays a list. */
    ASSERT_EQ_INT(nprof_sql_normalize(inner, strlen(inner), NPROF_SQL_QMARK, out, sizeof out, &len),
                  NPROF_ERANGE);
    ASSERT_EQ_INT(check_properties(inner, strlen(inner)), 0);
}

/* Pairs of a query and its QMARK text, each also checked for every property. */
static int check_pairs(const char *const (*pairs)[2], size_t n)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        char *got = norm_str(pairs[i][0], NPROF_SQL_QMARK);
        if (!got || strcmp(got, pairs[i][1]) != 0) {
            fprintf(stderr, "%s\n  expected: %s\n  got:      %s\n", pairs[i][0], pairs[i][1],
                    got ? got : "(null)");
            failed++;
        }
        free(got);
        failed += check_properties(pairs[i][0], strlen(pairs[i][0]));
    }
    return failed;
}

/* README: identifiers keep their case, only keywords are upper-cased.  Columns named like a
 * keyword, unquoted as PostgreSQL allows and ORMs write them, are identifiers. */
TEST(a_keyword_used_as_a_column_name_keeps_its_case)
{
    static const char *const pairs[][2] = {
        {"INSERT INTO logs (msg, at) VALUES ('x', now())",
         "INSERT INTO logs (msg, at) VALUES (?, now())"},
        {"INSERT INTO kv (key, value, level) VALUES ('a', 1, 2) ON CONFLICT (key) DO UPDATE "
         "SET value = EXCLUDED.value, at = EXCLUDED.at",
         "INSERT INTO kv (key, value, level) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
         "SET value = EXCLUDED.value, at = EXCLUDED.at"},
        {"SELECT logs.at, logs.level, \"logs\".key FROM logs", /* after a dot */
         "SELECT logs.at, logs.level, \"logs\".key FROM logs"},
        {"SELECT t . end, t.first FROM t", "SELECT t.end, t.first FROM t"},
        {"SELECT at, level, key FROM logs ORDER BY at DESC, level",
         "SELECT at, level, key FROM logs ORDER BY at DESC, level"},
        {"SELECT count(key), max(date) FROM t GROUP BY date",
         "SELECT count(key), max(date) FROM t GROUP BY date"},
        {"UPDATE logs SET level = 3, at = now() WHERE key = 'k' AND date >= '2024-01-01'",
         "UPDATE logs SET level = ?, at = now() WHERE key = ? AND date >= ?"},
        {"UPDATE logs SET level = level + 1 WHERE read AND time IS NULL",
         "UPDATE logs SET level = level + ? WHERE read AND time IS NULL"},
        {"SELECT x AS date, y AS level FROM t", "SELECT x AS date, y AS level FROM t"},
        {"SELECT * FROM events WHERE start BETWEEN 1 AND 2 AND index IN (3, 4)",
         "SELECT * FROM events WHERE start BETWEEN ? AND ? AND index IN (?)"},
        {"CREATE TABLE logs (id int PRIMARY KEY, at timestamptz, level int, UNIQUE (level))",
         "CREATE TABLE logs (id int PRIMARY KEY, at TIMESTAMPTZ, level int, UNIQUE (level))"},
        /* A '+' after such a name is binary: it used to vanish as a unary plus. */
        {"SELECT x FROM t WHERE t.at + 1 > 2", "SELECT x FROM t WHERE t.at + ? > ?"},
    };
    ASSERT_EQ_INT(check_pairs(pairs, sizeof pairs / sizeof pairs[0]), 0);
}

TEST(those_words_stay_keywords_where_sql_uses_them_as_keywords)
{
    static const char *const pairs[][2] = {
        {"select now() at time zone 'UTC', date '2024-01-01', time '10:00'",
         "SELECT now() AT TIME ZONE ?, ?, ?"},
        {"select cast(x as date), y::date, cast(z as timestamp) as time from t",
         "SELECT CAST(x AS DATE), y::DATE, CAST(z AS TIMESTAMP) AS time FROM t"},
        {"select * from t order by x nulls first, y nulls last fetch first 5 rows only",
         "SELECT * FROM t ORDER BY x NULLS FIRST, y NULLS LAST FETCH FIRST ? ROWS ONLY"},
        {"set transaction isolation level read committed, read write",
         "SET TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE"},
        {"start transaction", "START TRANSACTION"},
        {"select a from t for no key update skip locked",
         "SELECT a FROM t FOR NO KEY UPDATE SKIP LOCKED"},
        {"create unique index i on t (a)", "CREATE UNIQUE INDEX i ON t(a)"},
        {"create table t (id int, primary key (id), foreign key (x) references u (key))",
         "CREATE TABLE t (id int, PRIMARY KEY (id), FOREIGN KEY (x) REFERENCES u (key))"},
    };
    ASSERT_EQ_INT(check_pairs(pairs, sizeof pairs / sizeof pairs[0]), 0);
}

TEST(keyword_table_is_sorted_and_every_keyword_is_found)
{
    size_t n = nprof__sql_keyword_count();
    ASSERT_INT_OP(n, >=, 150);
    for (size_t i = 0; i < n; i++) {
        const char *k = nprof__sql_keyword_name(i);
        if (i)
            ASSERT_TRUE(strcmp(nprof__sql_keyword_name(i - 1), k) < 0);
        ASSERT_EQ_INT(nprof__sql_keyword(k, strlen(k)), (int)i);
        char lower[32];
        size_t l = strlen(k);
        for (size_t j = 0; j <= l; j++)
            lower[j] = (char)(k[j] >= 'A' && k[j] <= 'Z' ? k[j] + 32 : k[j]);
        ASSERT_EQ_INT(nprof__sql_keyword(lower, l), (int)i);
    }
    ASSERT_EQ_INT(nprof__sql_keyword("users", 5), -1);
    ASSERT_EQ_INT(nprof__sql_keyword("SELECTS", 7), -1);
    ASSERT_EQ_INT(nprof__sql_keyword("SELEC", 5), -1);
    ASSERT_EQ_INT(nprof__sql_keyword("count", 5), -1);
}

int main(void)
{
    RUN(table_has_enough_cases);
    RUN(table_qmark_style);
    RUN(table_dollar_style);
    RUN(table_outputs_keep_every_property);
    RUN(dollar_numbers_follow_output_order_after_collapsing);
    RUN(same_shape_same_fingerprint_different_shape_different_fingerprint);
    RUN(fingerprint_is_xxh3_of_the_qmark_text_and_never_zero);
    RUN(fingerprint_is_the_same_on_both_sides_of_the_buffered_limit);
    RUN(shape_refuses_what_normalize_refuses);
    RUN(small_buffers_are_cut_terminated_and_report_the_size_needed);
    RUN(bad_arguments_are_refused);
    RUN(the_length_is_the_length_not_the_nul);
    RUN(invalid_utf8_passes_through_identifiers_and_vanishes_in_literals);
    RUN(unterminated_literals_and_comments_take_the_rest);
    RUN(no_newline_ever_reaches_the_output);
    RUN(former_fuzzer_findings_stay_fixed);
    RUN(random_and_mutated_inputs_keep_every_property);
    RUN(output_fits_the_bound_in_the_worst_cases);
    RUN(ten_megabytes_of_sql_cost_linear_time);
    RUN(deep_nesting_is_linear_and_bounded);
    RUN(a_keyword_used_as_a_column_name_keeps_its_case);
    RUN(those_words_stay_keywords_where_sql_uses_them_as_keywords);
    RUN(keyword_table_is_sorted_and_every_keyword_is_found);
    return TEST_SUMMARY();
}
