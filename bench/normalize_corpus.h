/*
 * bench/normalize_corpus.h: the query corpus of bench_normalize, the one copy of it.
 *
 * SQL as ORMs send it to PostgreSQL, with the literals the driver has interpolated (what a
 * database hook or a query log sees): Django (double-quoted "table"."column" everywhere,
 * ::timestamptz casts, IN lists from prefetch_related, INSERT ... RETURNING), SQLAlchemy
 * (table.column AS table_column labels, anonymous subqueries, multi-row inserts),
 * ActiveRecord ("table".* selects, counter-cache updates), Hibernate 6 (lower case, alias
 * u1_0, no spaces around '='), and hand-written SQL (comments, newlines, CASE, ON CONFLICT,
 * FOR UPDATE SKIP LOCKED, doubled quotes, exponents, non-ASCII text).  From 56 to 434 bytes.
 * Every query is valid PostgreSQL, so libpg_query (the benchmark's anchor) parses all of them
 * and does its full work on each; bench_normalize checks that at start-up.
 *
 * bench_normalize hands the corpus to bench/normalize_regex.py by writing it to a temporary
 * file (each query followed by one NUL byte), so the Python anchor reads exactly these bytes.
 *
 * NC_SHORT and NC_LONG name the two queries measured on their own (per-size figures).
 */
#ifndef NPROF_NORMALIZE_CORPUS_H
#define NPROF_NORMALIZE_CORPUS_H

#include <stddef.h>

typedef struct nc_query {
    const char *sql;
    size_t len;         /* bytes, without the literal's NUL */
    const char *origin; /* which ORM (or a human) writes SQL like this */
} nc_query;

#define NC_Q(origin, text) {text, sizeof(text) - 1, #origin}

static const nc_query normalize_corpus[] = {
    NC_Q(DJANGO, /* 0 */
         "SELECT \"users\".\"id\" FROM \"users\" WHERE \"users\".\"id\" = 42"),
    NC_Q(RAILS, /* 1 */
         "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = 1337 LIMIT 1"),
    NC_Q(RAILS, /* 2 */
         "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"email\" = 'ada@example.com' LIMIT 1"),
    NC_Q(HIBERNATE, /* 3 */
         "select u1_0.id,u1_0.email,u1_0.name from users u1_0 where u1_0.id=17"),
    NC_Q(DJANGO, /* 4 */
         "SELECT 1 AS \"a\" FROM \"auth_user\" WHERE \"auth_user\".\"username\" = 'grace' LIMIT 1"),
    NC_Q(DJANGO, /* 5 */
         "SELECT COUNT(*) AS \"__count\" FROM \"blog_post\" WHERE \"blog_post\".\"published\" = "
         "true"),
    NC_Q(HAND, /* 6 */
         "select * from orders where customer_id = 7 and status in ('paid', 'shipped') order by "
         "created_at desc limit 50"),
    NC_Q(SQLALCHEMY, /* 7 */
         "SELECT users.id AS users_id, users.name AS users_name, users.fullname AS "
         "users_fullname FROM users WHERE users.id = 5"),
    NC_Q(DJANGO, /* 8 */
         "SELECT \"django_session\".\"session_key\", \"django_session\".\"session_data\", "
         "\"django_session\".\"expire_date\" FROM \"django_session\" WHERE "
         "(\"django_session\".\"expire_date\" > '2024-05-01T12:00:00.123456+00:00'::timestamptz "
         "AND \"django_session\".\"session_key\" = 'q8x0v3k2m9zt7w1p5r4n6b8c0d2f4h6j') LIMIT 21"),
    NC_Q(DJANGO, /* 9 */
         "SELECT \"auth_user\".\"id\", \"auth_user\".\"password\", \"auth_user\".\"last_login\", "
         "\"auth_user\".\"is_superuser\", \"auth_user\".\"username\", "
         "\"auth_user\".\"first_name\", \"auth_user\".\"last_name\", \"auth_user\".\"email\", "
         "\"auth_user\".\"is_staff\", \"auth_user\".\"is_active\", \"auth_user\".\"date_joined\" "
         "FROM \"auth_user\" WHERE \"auth_user\".\"id\" = 3 LIMIT 21"),
    NC_Q(DJANGO, /* 10 */
         "SELECT \"blog_comment\".\"id\", \"blog_comment\".\"post_id\", "
         "\"blog_comment\".\"author_id\", \"blog_comment\".\"body\", "
         "\"blog_comment\".\"created\" FROM \"blog_comment\" WHERE \"blog_comment\".\"post_id\" "
         "IN (101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112) ORDER BY "
         "\"blog_comment\".\"created\" ASC"),
    NC_Q(DJANGO, /* 11 */
         "INSERT INTO \"blog_post\" (\"title\", \"slug\", \"body\", \"author_id\", "
         "\"published\", \"created\", \"updated\") VALUES ('Hello, world', 'hello-world', 'It''s "
         "the first post.', 7, false, '2024-05-01T12:00:00+00:00'::timestamptz, "
         "'2024-05-01T12:00:00+00:00'::timestamptz) RETURNING \"blog_post\".\"id\""),
    NC_Q(DJANGO, /* 12 */
         "UPDATE \"blog_post\" SET \"title\" = 'Hello again', \"body\" = 'Edited.', \"updated\" "
         "= '2024-05-02T08:30:00+00:00'::timestamptz WHERE \"blog_post\".\"id\" = 512"),
    NC_Q(DJANGO, /* 13 */
         "DELETE FROM \"django_session\" WHERE \"django_session\".\"expire_date\" < "
         "'2024-05-01T00:00:00+00:00'::timestamptz"),
    NC_Q(DJANGO, /* 14 */
         "SELECT \"shop_product\".\"id\", \"shop_product\".\"name\", \"shop_product\".\"price\", "
         "\"shop_category\".\"id\", \"shop_category\".\"name\" FROM \"shop_product\" INNER JOIN "
         "\"shop_category\" ON (\"shop_product\".\"category_id\" = \"shop_category\".\"id\") "
         "WHERE (\"shop_product\".\"price\" >= 9.99 AND \"shop_product\".\"price\" < 250.00 AND "
         "\"shop_category\".\"slug\" = 'books') ORDER BY \"shop_product\".\"price\" DESC LIMIT "
         "20 OFFSET 40"),
    NC_Q(DJANGO, /* 15 */
         "SELECT \"orders_order\".\"id\", \"orders_order\".\"status\", "
         "\"orders_order\".\"total\", \"customers_customer\".\"id\", "
         "\"customers_customer\".\"email\" FROM \"orders_order\" LEFT OUTER JOIN "
         "\"customers_customer\" ON (\"orders_order\".\"customer_id\" = "
         "\"customers_customer\".\"id\") WHERE (\"orders_order\".\"status\" IN ('paid', "
         "'shipped', 'delivered') AND \"orders_order\".\"id\" IN (9001, 9002, 9003, 9004, 9005, "
         "9006, 9007, 9008)) ORDER BY \"orders_order\".\"created\" DESC"),
    NC_Q(DJANGO, /* 16 */
         "SELECT \"accounts_profile\".\"id\", \"accounts_profile\".\"user_id\", "
         "\"accounts_profile\".\"bio\", \"accounts_profile\".\"avatar\" FROM "
         "\"accounts_profile\" WHERE \"accounts_profile\".\"user_id\" IN (1, 2, 3, 5, 8, 13, 21, "
         "34, 55, 89)"),
    NC_Q(DJANGO, /* 17 */
         "UPDATE \"accounts_profile\" SET \"last_seen\" = "
         "'2024-05-03T10:11:12.131415+00:00'::timestamptz, \"login_count\" = "
         "(\"accounts_profile\".\"login_count\" + 1) WHERE \"accounts_profile\".\"user_id\" = 77"),
    NC_Q(DJANGO, /* 18 */
         "INSERT INTO \"django_admin_log\" (\"action_time\", \"user_id\", \"content_type_id\", "
         "\"object_id\", \"object_repr\", \"action_flag\", \"change_message\") VALUES "
         "('2024-05-03T10:11:12+00:00'::timestamptz, 1, 12, '512', 'Hello again', 2, "
         "'[{\"changed\": {\"fields\": [\"Title\", \"Body\"]}}]') RETURNING "
         "\"django_admin_log\".\"id\""),
    NC_Q(DJANGO, /* 19 */
         "SELECT DISTINCT \"tags_tag\".\"name\" FROM \"tags_tag\" INNER JOIN \"blog_post_tags\" "
         "ON (\"tags_tag\".\"id\" = \"blog_post_tags\".\"tag_id\") WHERE "
         "\"blog_post_tags\".\"post_id\" = 512 ORDER BY \"tags_tag\".\"name\" ASC"),
    NC_Q(DJANGO, /* 20 */
         "SELECT \"inventory_item\".\"id\", \"inventory_item\".\"sku\", "
         "\"inventory_item\".\"quantity\" FROM \"inventory_item\" WHERE "
         "(\"inventory_item\".\"warehouse_id\" = 4 AND NOT (\"inventory_item\".\"sku\" IN "
         "('A-100', 'A-101', 'B-200')) AND \"inventory_item\".\"quantity\" <= -1) FOR UPDATE"),
    NC_Q(SQLALCHEMY, /* 21 */
         "SELECT addresses.id AS addresses_id, addresses.email_address AS "
         "addresses_email_address, addresses.user_id AS addresses_user_id FROM addresses WHERE "
         "42 = addresses.user_id ORDER BY addresses.id"),
    NC_Q(SQLALCHEMY, /* 22 */
         "SELECT users.id AS users_id, users.name AS users_name, addresses_1.id AS "
         "addresses_1_id, addresses_1.email_address AS addresses_1_email_address FROM users LEFT "
         "OUTER JOIN addresses AS addresses_1 ON users.id = addresses_1.user_id WHERE users.name "
         "IN ('wendy', 'jack', 'ed', 'fred') ORDER BY users.id, addresses_1.id"),
    NC_Q(SQLALCHEMY, /* 23 */
         "INSERT INTO users (name, fullname, nickname) VALUES ('patrick', 'Patrick Star', 'pat') "
         "RETURNING users.id"),
    NC_Q(SQLALCHEMY, /* 24 */
         "UPDATE users SET fullname='Sandy Squirrel', nickname='sandy' WHERE users.id = 2"),
    NC_Q(SQLALCHEMY, /* 25 */
         "SELECT count(*) AS count_1 FROM (SELECT users.id AS users_id FROM users WHERE "
         "users.name LIKE '%ed%') AS anon_1"),
    NC_Q(SQLALCHEMY, /* 26 */
         "SELECT invoices.id, invoices.number, invoices.amount, invoices.currency, "
         "customers.name FROM invoices JOIN customers ON customers.id = invoices.customer_id "
         "WHERE invoices.issued_at BETWEEN '2024-01-01' AND '2024-03-31' AND invoices.amount > "
         "1000.5 AND invoices.currency = 'EUR' ORDER BY invoices.issued_at DESC LIMIT 100"),
    NC_Q(SQLALCHEMY, /* 27 */
         "INSERT INTO events (kind, payload, created_at) VALUES ('login', '{\"ip\": "
         "\"10.0.0.7\", \"ua\": \"Mozilla/5.0\"}', '2024-05-03 10:11:12.131415'), ('logout', "
         "'{\"ip\": \"10.0.0.7\"}', '2024-05-03 10:41:02.000001'), ('login', '{\"ip\": "
         "\"192.168.1.20\", \"ua\": \"curl/8.4.0\"}', '2024-05-03 11:00:00') RETURNING events.id"),
    NC_Q(SQLALCHEMY, /* 28 */
         "SELECT tasks.id, tasks.title, tasks.state FROM tasks WHERE tasks.id = ANY (ARRAY[11, "
         "12, 13, 14, 15, 16, 17, 18, 19, 20]) AND tasks.state != 'archived'"),
    NC_Q(RAILS, /* 29 */
         "SELECT \"posts\".* FROM \"posts\" WHERE \"posts\".\"author_id\" = 12 AND "
         "\"posts\".\"published_at\" IS NOT NULL ORDER BY \"posts\".\"published_at\" DESC LIMIT "
         "10"),
    NC_Q(RAILS, /* 30 */
         "SELECT \"comments\".* FROM \"comments\" WHERE \"comments\".\"post_id\" IN (4, 8, 15, "
         "16, 23, 42) ORDER BY \"comments\".\"id\" ASC"),
    NC_Q(RAILS, /* 31 */
         "INSERT INTO \"comments\" (\"post_id\", \"user_id\", \"body\", \"created_at\", "
         "\"updated_at\") VALUES (42, 9, 'Nice post! Zoë says hi.', '2024-05-03 "
         "10:11:12.131415', '2024-05-03 10:11:12.131415') RETURNING \"id\""),
    NC_Q(RAILS, /* 32 */
         "UPDATE \"posts\" SET \"comments_count\" = COALESCE(\"comments_count\", 0) + 1 WHERE "
         "\"posts\".\"id\" = 42"),
    NC_Q(RAILS, /* 33 */
         "SELECT \"users\".* FROM \"users\" INNER JOIN \"memberships\" ON "
         "\"memberships\".\"user_id\" = \"users\".\"id\" WHERE \"memberships\".\"team_id\" = 3 "
         "AND \"users\".\"active\" = TRUE AND \"users\".\"role\" IN ('admin', 'owner') ORDER BY "
         "\"users\".\"name\" ASC"),
    NC_Q(RAILS, /* 34 */
         "SELECT 1 AS one FROM \"users\" WHERE LOWER(\"users\".\"email\") = "
         "LOWER('Ada@Example.com') AND \"users\".\"id\" != 5 LIMIT 1"),
    NC_Q(RAILS, /* 35 */
         "SELECT \"active_storage_attachments\".* FROM \"active_storage_attachments\" WHERE "
         "\"active_storage_attachments\".\"record_type\" = 'Post' AND "
         "\"active_storage_attachments\".\"name\" = 'cover' AND "
         "\"active_storage_attachments\".\"record_id\" = 42 LIMIT 1"),
    NC_Q(HIBERNATE, /* 36 */
         "select o1_0.id,o1_0.customer_id,o1_0.placed_at,o1_0.status,o1_0.total from orders o1_0 "
         "where o1_0.customer_id=33 and o1_0.status in ('NEW','PAID') order by o1_0.placed_at "
         "desc offset 0 rows fetch first 25 rows only"),
    NC_Q(HIBERNATE, /* 37 */
         "update orders set status='SHIPPED',version=8 where id=1200 and version=7"),
    NC_Q(HIBERNATE, /* 38 */
         "insert into order_lines (order_id,product_id,quantity,unit_price,id) values "
         "(1200,55,3,19.90,880031)"),
    NC_Q(HAND, /* 39 */
         "-- nightly report\nSELECT date_trunc('day', created_at) AS day, count(*) AS n, "
         "sum(total) AS revenue\n  FROM orders\n WHERE created_at >= now() - interval '30 days'\n"
         "   AND status <> 'cancelled'\n GROUP BY 1\n ORDER BY 1"),
    NC_Q(HAND, /* 40 */
         "/* app:web,controller:users,action:show */ SELECT id, name, email FROM users WHERE id "
         "= 1001"),
    NC_Q(HAND, /* 41 */
         "SELECT id, payload FROM jobs WHERE queue = 'default' AND run_at <= now() AND locked_at "
         "IS NULL ORDER BY priority DESC, run_at ASC LIMIT 1 FOR UPDATE SKIP LOCKED"),
    NC_Q(HAND, /* 42 */
         "INSERT INTO page_views (path, referrer, user_id, viewed_at) VALUES ('/books/42', NULL, "
         "7, '2024-05-03T10:11:12Z') ON CONFLICT (path, user_id) DO UPDATE SET viewed_at = "
         "EXCLUDED.viewed_at, hits = page_views.hits + 1"),
    NC_Q(HAND, /* 43 */
         "SELECT CASE WHEN score >= 90 THEN 'A' WHEN score >= 80 THEN 'B' ELSE 'C' END AS grade, "
         "count(*) FROM results WHERE exam_id = 3 GROUP BY 1 HAVING count(*) > 5"),
    NC_Q(HAND, /* 44 */
         "SELECT u.id, u.name FROM users u WHERE u.name ILIKE 'o''brien%' AND u.created_at > "
         "'2023-12-31' AND u.score > 1.5e3"),
    NC_Q(HAND, /* 45 */
         "DELETE FROM cart_items WHERE cart_id = 991 AND product_id IN (3, 4, 5)"),
    NC_Q(HAND, /* 46 */
         "UPDATE accounts SET balance = balance - 25.00, updated_at = now() WHERE id = 18 AND "
         "balance >= 25.00 RETURNING balance"),
};

#undef NC_Q

#define NC_COUNT (sizeof normalize_corpus / sizeof normalize_corpus[0])
#define NC_SHORT 0  /* SELECT "users"."id" FROM "users" WHERE "users"."id" = 42 */
#define NC_LONG 15  /* the Django LEFT OUTER JOIN with two IN lists */

#endif /* NPROF_NORMALIZE_CORPUS_H */
