--# tests/sql/pgss_corpus.sql: statements as applications send them, for tests/test_pgss.c.
--#
--# Format: one statement per block; a line holding only ";;" ends a block.  Lines starting
--# with "--#" (like these) are notes and are dropped; "--@ pg-semantic <why>" marks a statement
--# that PostgreSQL groups with another only after parse analysis (names, casts resolved), which
--# a lexical normalizer cannot see.  Every other line is sent to the server as it is,
--# comments and blank lines included.  Every statement must run against tests/sql/pgss_schema.sql
--# (each one is rolled back afterwards).  Near-duplicates that differ only in literals,
--# whitespace, keyword case and comments are deliberate: they form the groups.
--#
--# ---- Django ORM: quoted identifiers, LIMIT 21, IN lists from prefetch_related ----------------
SELECT "users"."id", "users"."uuid", "users"."email", "users"."username", "users"."is_active", "users"."is_staff", "users"."date_joined", "users"."last_login" FROM "users" WHERE "users"."id" = 7 LIMIT 21
;;
SELECT "users"."id", "users"."uuid", "users"."email", "users"."username", "users"."is_active", "users"."is_staff", "users"."date_joined", "users"."last_login" FROM "users" WHERE "users"."id" = 12 LIMIT 21
;;
SELECT "users"."id", "users"."uuid", "users"."email", "users"."username", "users"."is_active", "users"."is_staff", "users"."date_joined", "users"."last_login" FROM "users" WHERE "users"."id" = 48 LIMIT 21
;;
SELECT "users"."id", "users"."uuid", "users"."email", "users"."username", "users"."is_active", "users"."is_staff", "users"."date_joined", "users"."last_login" FROM "users" WHERE "users"."email" = 'user3@example.com' LIMIT 21
;;
SELECT "users"."id", "users"."uuid", "users"."email", "users"."username", "users"."is_active", "users"."is_staff", "users"."date_joined", "users"."last_login" FROM "users" WHERE "users"."email" = 'o''brien@example.com' LIMIT 21
;;
SELECT "users"."id", "users"."uuid", "users"."email", "users"."username", "users"."is_active", "users"."is_staff", "users"."date_joined", "users"."last_login" FROM "users" WHERE "users"."email" = 'semi;colon@example.com' LIMIT 21
;;
SELECT "articles"."id", "articles"."author_id", "articles"."slug", "articles"."title", "articles"."status", "articles"."published_at" FROM "articles" WHERE "articles"."slug" = 'article-5' LIMIT 21
;;
SELECT "articles"."id", "articles"."author_id", "articles"."slug", "articles"."title", "articles"."status", "articles"."published_at" FROM "articles" WHERE "articles"."slug" = 'article-77' LIMIT 21
;;
SELECT "articles"."id", "articles"."author_id", "articles"."slug", "articles"."title", "articles"."status", "articles"."published_at" FROM "articles" WHERE "articles"."status" = 'published' ORDER BY "articles"."published_at" DESC LIMIT 10
;;
SELECT "articles"."id", "articles"."author_id", "articles"."slug", "articles"."title", "articles"."status", "articles"."published_at" FROM "articles" WHERE "articles"."status" = 'published' ORDER BY "articles"."published_at" DESC LIMIT 10 OFFSET 10
;;
SELECT "articles"."id", "articles"."author_id", "articles"."slug", "articles"."title", "articles"."status", "articles"."published_at" FROM "articles" WHERE "articles"."status" = 'draft' ORDER BY "articles"."published_at" DESC LIMIT 25 OFFSET 50
;;
SELECT "comments"."id", "comments"."article_id", "comments"."user_id", "comments"."body", "comments"."created_at" FROM "comments" WHERE "comments"."article_id" IN (1, 2, 3) ORDER BY "comments"."created_at" ASC
;;
SELECT "comments"."id", "comments"."article_id", "comments"."user_id", "comments"."body", "comments"."created_at" FROM "comments" WHERE "comments"."article_id" IN (4, 5, 6, 7, 8, 9, 10, 11, 12, 13) ORDER BY "comments"."created_at" ASC
;;
SELECT "comments"."id", "comments"."article_id", "comments"."user_id", "comments"."body", "comments"."created_at" FROM "comments" WHERE "comments"."article_id" IN (20, 21) ORDER BY "comments"."created_at" ASC
;;
SELECT "comments"."id", "comments"."article_id", "comments"."user_id", "comments"."body", "comments"."created_at" FROM "comments" WHERE "comments"."article_id" IN (30, 31, 32) ORDER BY "comments"."created_at" ASC
;;
SELECT ("article_tags"."article_id") AS "_prefetch_related_val_article_id", "tags"."id", "tags"."name", "tags"."slug" FROM "tags" INNER JOIN "article_tags" ON ("tags"."id" = "article_tags"."tag_id") WHERE "article_tags"."article_id" IN (1, 2, 3, 4, 5)
;;
SELECT ("article_tags"."article_id") AS "_prefetch_related_val_article_id", "tags"."id", "tags"."name", "tags"."slug" FROM "tags" INNER JOIN "article_tags" ON ("tags"."id" = "article_tags"."tag_id") WHERE "article_tags"."article_id" IN (6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25)
;;
SELECT ("article_tags"."article_id") AS "_prefetch_related_val_article_id", "tags"."id", "tags"."name", "tags"."slug" FROM "tags" INNER JOIN "article_tags" ON ("tags"."id" = "article_tags"."tag_id") WHERE "article_tags"."article_id" IN (50, 51, 52, 53, 54)
;;
SELECT COUNT(*) AS "__count" FROM "articles" WHERE "articles"."author_id" = 3
;;
SELECT COUNT(*) AS "__count" FROM "articles" WHERE "articles"."author_id" = 8
;;
SELECT COUNT(*) AS "__count" FROM "comments" WHERE ("comments"."article_id" = 10 AND NOT "comments"."is_spam")
;;
SELECT COUNT(*) AS "__count" FROM "comments" WHERE ("comments"."article_id" = 99 AND NOT "comments"."is_spam")
;;
SELECT (1) AS "a" FROM "users" WHERE "users"."username" = 'user5' LIMIT 1
;;
SELECT (1) AS "a" FROM "users" WHERE "users"."username" = 'nobody' LIMIT 1
;;
SELECT "articles"."id", "articles"."title", "authors"."id", "authors"."name" FROM "articles" INNER JOIN "authors" ON ("articles"."author_id" = "authors"."id") WHERE ("articles"."published_at" IS NOT NULL AND "articles"."view_count" > 100) ORDER BY "articles"."view_count" DESC LIMIT 5
;;
SELECT "articles"."id", "articles"."title", "authors"."id", "authors"."name" FROM "articles" INNER JOIN "authors" ON ("articles"."author_id" = "authors"."id") WHERE ("articles"."published_at" IS NOT NULL AND "articles"."view_count" > 1000) ORDER BY "articles"."view_count" DESC LIMIT 5
;;
SELECT "articles"."id", "articles"."title", "authors"."id", "authors"."name" FROM "articles" INNER JOIN "authors" ON ("articles"."author_id" = "authors"."id") WHERE ("articles"."published_at" IS NULL AND "articles"."view_count" > 100) ORDER BY "articles"."view_count" DESC LIMIT 5
;;
SELECT "sessions"."session_key", "sessions"."session_data", "sessions"."expire_date" FROM "sessions" WHERE ("sessions"."expire_date" > '2025-01-01T10:00:00+00:00'::timestamptz AND "sessions"."session_key" = 'c4ca4238a0b923820dcc509a6f75849b') LIMIT 21
;;
SELECT "sessions"."session_key", "sessions"."session_data", "sessions"."expire_date" FROM "sessions" WHERE ("sessions"."expire_date" > '2025-03-17T08:12:44.512301+00:00'::timestamptz AND "sessions"."session_key" = 'c81e728d9d4c2f636f067f89cc14862c') LIMIT 21
;;
UPDATE "users" SET "last_login" = '2025-01-02T03:04:05.678901+00:00'::timestamptz WHERE "users"."id" = 4
;;
UPDATE "users" SET "last_login" = '2025-02-11T13:14:15.000001+00:00'::timestamptz WHERE "users"."id" = 19
;;
UPDATE "articles" SET "view_count" = ("articles"."view_count" + 1) WHERE "articles"."id" = 42
;;
UPDATE "articles" SET "view_count" = ("articles"."view_count" + 1) WHERE "articles"."id" = 43
;;
UPDATE "articles" SET "view_count" = ("articles"."view_count" + 5) WHERE "articles"."id" = 7
;;
INSERT INTO "comments" ("article_id", "user_id", "parent_id", "body", "created_at", "is_spam", "score") VALUES (5, 3, NULL, 'Great post!', '2025-01-05T10:00:00+00:00'::timestamptz, false, 0) RETURNING "comments"."id"
;;
INSERT INTO "comments" ("article_id", "user_id", "parent_id", "body", "created_at", "is_spam", "score") VALUES (17, 44, 12, 'I disagree; here is why...', '2025-01-06T11:30:00+00:00'::timestamptz, true, 3) RETURNING "comments"."id"
;;
INSERT INTO "article_tags" ("article_id", "tag_id") VALUES (1, 5), (1, 6), (1, 7) ON CONFLICT DO NOTHING
;;
INSERT INTO "article_tags" ("article_id", "tag_id") VALUES (2, 1) ON CONFLICT DO NOTHING
;;
INSERT INTO "article_tags" ("article_id", "tag_id") VALUES (3, 1), (3, 3), (3, 5), (3, 6), (3, 7), (3, 8) ON CONFLICT DO NOTHING
;;
DELETE FROM "sessions" WHERE "sessions"."session_key" IN ('c4ca4238a0b923820dcc509a6f75849b')
;;
DELETE FROM "sessions" WHERE "sessions"."session_key" IN ('c81e728d9d4c2f636f067f89cc14862c', 'eccbc87e4b5ce2fe28308fd9f2a7baf3')
;;
DELETE FROM "sessions" WHERE "sessions"."expire_date" < '2025-01-02T00:00:00+00:00'::timestamptz
;;
DELETE FROM "sessions" WHERE "sessions"."expire_date" < '2025-01-03T12:00:00+00:00'::timestamptz
;;
SELECT "orders"."id", "orders"."public_id", "orders"."status", "orders"."total" FROM "orders" WHERE ("orders"."user_id" = 5 AND "orders"."status" IN ('paid', 'shipped')) ORDER BY "orders"."created_at" DESC
;;
SELECT "orders"."id", "orders"."public_id", "orders"."status", "orders"."total" FROM "orders" WHERE ("orders"."user_id" = 6 AND "orders"."status" IN ('pending', 'paid', 'shipped')) ORDER BY "orders"."created_at" DESC
;;
SELECT "orders"."id", "orders"."public_id", "orders"."status", "orders"."total" FROM "orders" WHERE ("orders"."user_id" = 9 AND "orders"."status" IN ('paid', 'cancelled')) ORDER BY "orders"."created_at" DESC
;;
SELECT "orders"."user_id", SUM("orders"."total") AS "spent" FROM "orders" WHERE "orders"."created_at" >= '2024-03-01T00:00:00+00:00'::timestamptz GROUP BY "orders"."user_id" ORDER BY "spent" DESC LIMIT 10
;;
SELECT "orders"."user_id", SUM("orders"."total") AS "spent" FROM "orders" WHERE "orders"."created_at" >= '2024-03-15T00:00:00+00:00'::timestamptz GROUP BY "orders"."user_id" ORDER BY "spent" DESC LIMIT 20
;;
SELECT "users"."id", "users"."username" FROM "users" WHERE ("users"."is_active" AND "users"."username"::text LIKE 'user1%') ORDER BY "users"."username" ASC
;;
SELECT "users"."id", "users"."username" FROM "users" WHERE ("users"."is_active" AND "users"."username"::text LIKE 'adm%') ORDER BY "users"."username" ASC
;;
SELECT "users"."id", "users"."username" FROM "users" WHERE ("users"."is_active" AND UPPER("users"."email"::text) LIKE UPPER('%example%')) ORDER BY "users"."username" ASC
;;
SELECT "users"."id", "users"."username" FROM "users" WHERE ("users"."is_active" AND UPPER("users"."email"::text) LIKE UPPER('%@EXAMPLE.COM')) ORDER BY "users"."username" ASC
;;
SELECT "products"."id", "products"."sku", "products"."price" FROM "products" WHERE "products"."attributes" -> 'color' = '"red"'::jsonb
;;
SELECT "products"."id", "products"."sku", "products"."price" FROM "products" WHERE "products"."attributes" -> 'color' = '"blue"'::jsonb
;;
SELECT "products"."id", "products"."sku", "products"."price" FROM "products" WHERE "products"."attributes" @> '{"color": "green"}'::jsonb
;;
SELECT "products"."id", "products"."sku", "products"."price" FROM "products" WHERE "products"."attributes" @> '{"color": "red", "weight": 30}'::jsonb
;;
SELECT "products"."id", "products"."sku", "products"."price" FROM "products" WHERE "products"."tags" @> ARRAY['tag1']::text[]
;;
SELECT "products"."id", "products"."sku", "products"."price" FROM "products" WHERE "products"."tags" @> ARRAY['tag1', 'tag2']::text[]
;;
--# ---- SQLAlchemy: AS labels, anon parameters rendered inline, lower-case keywords ------------
SELECT users.id AS users_id, users.email AS users_email, users.first_name AS users_first_name
FROM users
WHERE users.id = 3
;;
SELECT users.id AS users_id, users.email AS users_email, users.first_name AS users_first_name
FROM users
WHERE users.id = 31
;;
SELECT users.id AS users_id, users.email AS users_email, users.first_name AS users_first_name
FROM users
WHERE users.id = 45
;;
SELECT articles.id AS articles_id, articles.title AS articles_title, authors_1.id AS authors_1_id, authors_1.name AS authors_1_name
FROM articles LEFT OUTER JOIN authors AS authors_1 ON authors_1.id = articles.author_id
WHERE articles.status = 'published' ORDER BY articles.id
 LIMIT 20 OFFSET 0
;;
SELECT articles.id AS articles_id, articles.title AS articles_title, authors_1.id AS authors_1_id, authors_1.name AS authors_1_name
FROM articles LEFT OUTER JOIN authors AS authors_1 ON authors_1.id = articles.author_id
WHERE articles.status = 'published' ORDER BY articles.id
 LIMIT 20 OFFSET 40
;;
SELECT articles.id AS articles_id, articles.title AS articles_title, authors_1.id AS authors_1_id, authors_1.name AS authors_1_name
FROM articles LEFT OUTER JOIN authors AS authors_1 ON authors_1.id = articles.author_id
WHERE articles.status = 'draft' ORDER BY articles.id
 LIMIT 50 OFFSET 100
;;
SELECT count(*) AS count_1
FROM (SELECT orders.id AS orders_id, orders.total AS orders_total
FROM orders
WHERE orders.user_id = 17) AS anon_1
;;
SELECT count(*) AS count_1
FROM (SELECT orders.id AS orders_id, orders.total AS orders_total
FROM orders
WHERE orders.user_id = 2) AS anon_1
;;
SELECT orders.id, orders.total
FROM orders
WHERE orders.id IN (1, 2, 3, 4)
;;
SELECT orders.id, orders.total
FROM orders
WHERE orders.id IN (10, 20)
;;
SELECT orders.id, orders.total
FROM orders
WHERE orders.id IN (5, 6, 7, 8, 9, 10, 11, 12)
;;
SELECT orders.id, orders.total
FROM orders
WHERE orders.id = ANY (ARRAY[1, 2, 3])
;;
SELECT orders.id, orders.total
FROM orders
WHERE orders.id = ANY (ARRAY[100, 101, 102, 103, 104, 105])
;;
SELECT orders.id, orders.total
FROM orders
WHERE orders.id = ANY (ARRAY[7])
;;
SELECT orders.id, orders.total
FROM orders
WHERE orders.id = ANY ('{1,2,3}'::bigint[])
;;
SELECT orders.id, orders.total
FROM orders
WHERE orders.id = ANY ('{4,5,6,7,8,9,10,11}'::bigint[])
;;
INSERT INTO audit_log (actor_id, action, object_ids, payload) VALUES (1, 'login', ARRAY[1, 2], '{"ip": "10.0.0.1"}') RETURNING audit_log.id
;;
INSERT INTO audit_log (actor_id, action, object_ids, payload) VALUES (2, 'logout', ARRAY[7, 8], '{"ip": "10.0.0.2", "ua": "curl"}') RETURNING audit_log.id
;;
INSERT INTO audit_log (actor_id, action, object_ids, payload) VALUES (3, 'update', ARRAY[4, 5], NULL) RETURNING audit_log.id
;;
INSERT INTO audit_log (actor_id, action, object_ids, payload) VALUES (2, 'update', '{}', '{}') RETURNING audit_log.id
;;
UPDATE products SET stock=(products.stock - 2) WHERE products.id = 11 AND products.stock >= 2
;;
UPDATE products SET stock=(products.stock - 1) WHERE products.id = 12 AND products.stock >= 1
;;
UPDATE products SET stock=(products.stock - 3) WHERE products.id = 19 AND products.stock >= 3
;;
DELETE FROM order_items WHERE order_items.order_id = 3 AND order_items.product_id = 24
;;
DELETE FROM order_items WHERE order_items.order_id = 50 AND order_items.product_id = 18
;;
SELECT tags.id, tags.name
FROM tags
WHERE lower(tags.name) = lower('PostgreSQL')
;;
SELECT tags.id, tags.name
FROM tags
WHERE lower(tags.name) = lower('Django')
;;
select users.id, users.username, users.balance
from users
where users.balance between 10 and 100
order by users.balance desc
;;
select users.id, users.username, users.balance
from users
where users.balance between 150.50 and 200.75
order by users.balance desc
;;
select users.id, users.username, users.balance
from users
where users.balance between 0.01 and 99.99
order by users.balance desc
;;
select users.id, users.username, users.balance
from users
where users.balance between 5 and 30
order by users.balance desc
;;
SELECT sessions.session_key, sessions.user_id
FROM sessions
WHERE sessions.ip << '10.0.0.0/24'::inet
;;
SELECT sessions.session_key, sessions.user_id
FROM sessions
WHERE sessions.ip << '192.168.0.0/16'::inet
;;
SELECT set_config('app.current_user_id', '42', true)
;;
SELECT set_config('app.current_user_id', '7', true)
;;
SELECT set_config('app.tenant', 'acme', false)
;;
--# ---- ActiveRecord: "table"."column", $-less inline values, LIMIT 1, sqlcommenter tags ------
SELECT "users".* FROM "users" WHERE "users"."id" = 1 LIMIT 1
;;
SELECT "users".* FROM "users" WHERE "users"."id" = 2 LIMIT 1 /*application:Blog,controller:users,action:show*/
;;
SELECT "users".* FROM "users" WHERE "users"."id" = 33 LIMIT 1 /*application:Blog,controller:admin,action:edit*/
;;
/*application:Blog,controller:users,action:index*/ SELECT "users".* FROM "users" WHERE "users"."id" = 40 LIMIT 1
;;
SELECT "articles".* FROM "articles" WHERE "articles"."author_id" = 2 ORDER BY "articles"."published_at" DESC NULLS LAST LIMIT 10
;;
SELECT "articles".* FROM "articles" WHERE "articles"."author_id" = 9 ORDER BY "articles"."published_at" DESC NULLS LAST LIMIT 10
;;
SELECT "articles".* FROM "articles" WHERE "articles"."author_id" = 4 ORDER BY "articles"."published_at" DESC NULLS LAST LIMIT 30 /*controller:articles,action:index,line:/app/controllers/articles_controller.rb:12*/
;;
SELECT "comments".* FROM "comments" WHERE "comments"."article_id" = 8 AND "comments"."parent_id" IS NULL
;;
SELECT "comments".* FROM "comments" WHERE "comments"."article_id" = 81 AND "comments"."parent_id" IS NULL
;;
SELECT "comments".* FROM "comments" WHERE "comments"."article_id" = 8 AND "comments"."parent_id" = 3
;;
SELECT "comments".* FROM "comments" WHERE "comments"."article_id" = 45 AND "comments"."parent_id" = 35
;;
SELECT "comments".* FROM "comments" WHERE "comments"."article_id" = 45 AND "comments"."parent_id" IS NOT NULL
;;
SELECT "tags".* FROM "tags" INNER JOIN "article_tags" ON "tags"."id" = "article_tags"."tag_id" WHERE "article_tags"."article_id" = 1
;;
SELECT "tags".* FROM "tags" INNER JOIN "article_tags" ON "tags"."id" = "article_tags"."tag_id" WHERE "article_tags"."article_id" = 64
;;
SELECT "authors".* FROM "authors" WHERE "authors"."id" IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
;;
SELECT "authors".* FROM "authors" WHERE "authors"."id" IN (3, 9)
;;
SELECT "authors".* FROM "authors" WHERE "authors"."id" IN (2, 4, 6)
;;
SELECT 1 AS one FROM "users" WHERE "users"."email" = 'user10@example.com' LIMIT 1
;;
SELECT 1 AS one FROM "users" WHERE "users"."email" = 'new.person@example.org' LIMIT 1
;;
SELECT 1 AS one FROM "users" WHERE "users"."email" = 'user10@example.com' AND "users"."id" != 10 LIMIT 1
;;
SELECT 1 AS one FROM "users" WHERE "users"."email" = 'user11@example.com' AND "users"."id" != 12 LIMIT 1
;;
INSERT INTO "users" ("uuid", "email", "username", "first_name", "last_name", "date_joined") VALUES ('6f1c3d2a-8b7e-4f00-9a1b-2c3d4e5f6a7b', 'alice@example.com', 'alice', 'Alice', 'Liddell', '2025-01-10 09:00:00') RETURNING "id"
;;
INSERT INTO "users" ("uuid", "email", "username", "first_name", "last_name", "date_joined") VALUES ('0a0b0c0d-1e1f-4a2b-8c3d-4e5f60718293', 'bob@example.net', 'bob', 'Bob', 'O''Hara', '2025-01-11 10:30:00') RETURNING "id"
;;
UPDATE "articles" SET "title" = 'New title', "updated_at" = '2025-01-10 09:00:00.123456' WHERE "articles"."id" = 5
;;
UPDATE "articles" SET "title" = 'Another: title; with punctuation', "updated_at" = '2025-01-12 19:20:00.5' WHERE "articles"."id" = 6
;;
UPDATE "orders" SET "status" = 'paid', "paid_at" = '2025-01-10 09:00:00' WHERE "orders"."id" = 4
;;
UPDATE "orders" SET "status" = 'shipped', "paid_at" = '2025-01-11 12:00:00' WHERE "orders"."id" = 8
;;
UPDATE "users" SET "balance" = COALESCE("balance", 0) + 10 WHERE "users"."id" = 3
;;
UPDATE "users" SET "balance" = COALESCE("balance", 0) + 10.5 WHERE "users"."id" = 4
;;
DELETE FROM "comments" WHERE "comments"."id" = 250
;;
DELETE FROM "comments" WHERE "comments"."id" = 299
;;
SELECT COUNT(*) FROM "orders" WHERE "orders"."user_id" = 10 AND "orders"."status" = 'paid'
;;
SELECT COUNT(*) FROM "orders" WHERE "orders"."user_id" = 11 AND "orders"."status" = 'cancelled'
;;
SELECT SUM("order_items"."quantity" * "order_items"."unit_price") FROM "order_items" WHERE "order_items"."order_id" = 10
;;
SELECT SUM("order_items"."quantity" * "order_items"."unit_price") FROM "order_items" WHERE "order_items"."order_id" = 150
;;
SELECT "products".* FROM "products" WHERE "products"."sku" = 'SKU-00001' LIMIT 1 FOR UPDATE
;;
SELECT "products".* FROM "products" WHERE "products"."sku" = 'SKU-00022' LIMIT 1 FOR UPDATE
;;
SELECT "products".* FROM "products" WHERE "products"."sku" = 'SKU-00022' LIMIT 1 FOR UPDATE SKIP LOCKED
;;
--# ---- hand-written SQL: joins, subqueries, CTEs, window functions ------------------------------
SELECT u.id, u.username, count(c.id) AS comments
FROM users u
LEFT JOIN comments c ON c.user_id = u.id AND c.created_at > now() - interval '30 days'
GROUP BY u.id, u.username
HAVING count(c.id) > 2
ORDER BY comments DESC
LIMIT 10
;;
SELECT u.id, u.username, count(c.id) AS comments
FROM users u
LEFT JOIN comments c ON c.user_id = u.id AND c.created_at > now() - interval '7 days'
GROUP BY u.id, u.username
HAVING count(c.id) > 5
ORDER BY comments DESC
LIMIT 25
;;
select u.id, u.username, count(c.id) as comments
  from users u
  left join comments c on c.user_id = u.id and c.created_at > now() - interval '1 day'
 group by u.id, u.username
having count(c.id) > 0
 order by comments desc
 limit 3
;;
SELECT a.id, a.title, a.view_count,
       rank() OVER (PARTITION BY a.author_id ORDER BY a.view_count DESC) AS rnk
FROM articles a
WHERE a.status = 'published'
;;
SELECT a.id, a.title, a.view_count,
       rank() OVER (PARTITION BY a.author_id ORDER BY a.view_count DESC) AS rnk
FROM articles a
WHERE a.status = 'archived'
;;
SELECT a.id, a.title, a.view_count,
       dense_rank() OVER (PARTITION BY a.author_id ORDER BY a.view_count DESC) AS rnk
FROM articles a
WHERE a.status = 'published'
;;
SELECT id, created_at, total,
       sum(total) OVER (ORDER BY created_at ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS rolling
FROM orders WHERE user_id = 3
;;
SELECT id, created_at, total,
       sum(total) OVER (ORDER BY created_at ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS rolling
FROM orders WHERE user_id = 14
;;
SELECT id, created_at, total,
       lag(total, 1) OVER w AS previous, lead(total, 1) OVER w AS next
FROM orders WHERE user_id = 14
WINDOW w AS (ORDER BY created_at)
;;
SELECT id, created_at, total,
       lag(total, 2) OVER w AS previous, lead(total, 2) OVER w AS next
FROM orders WHERE user_id = 20
WINDOW w AS (ORDER BY created_at)
;;
WITH recent AS (
    SELECT * FROM orders WHERE created_at > '2024-03-10'::timestamptz
), totals AS (
    SELECT user_id, sum(total) AS spent, count(*) AS n FROM recent GROUP BY user_id
)
SELECT u.username, t.spent, t.n FROM totals t JOIN users u ON u.id = t.user_id
WHERE t.spent > 100 ORDER BY t.spent DESC LIMIT 10
;;
WITH recent AS (
    SELECT * FROM orders WHERE created_at > '2024-03-20'::timestamptz
), totals AS (
    SELECT user_id, sum(total) AS spent, count(*) AS n FROM recent GROUP BY user_id
)
SELECT u.username, t.spent, t.n FROM totals t JOIN users u ON u.id = t.user_id
WHERE t.spent > 500 ORDER BY t.spent DESC LIMIT 5
;;
WITH RECURSIVE thread AS (
    SELECT id, parent_id, body, 1 AS depth FROM comments WHERE id = 41
    UNION ALL
    SELECT c.id, c.parent_id, c.body, t.depth + 1 FROM comments c JOIN thread t ON c.parent_id = t.id
    WHERE t.depth < 10
)
SELECT * FROM thread ORDER BY depth
;;
WITH RECURSIVE thread AS (
    SELECT id, parent_id, body, 1 AS depth FROM comments WHERE id = 12
    UNION ALL
    SELECT c.id, c.parent_id, c.body, t.depth + 1 FROM comments c JOIN thread t ON c.parent_id = t.id
    WHERE t.depth < 5
)
SELECT * FROM thread ORDER BY depth
;;
SELECT a.id, a.title
FROM articles a
WHERE EXISTS (SELECT 1 FROM comments c WHERE c.article_id = a.id AND c.score > 3)
  AND a.author_id = 2
;;
SELECT a.id, a.title
FROM articles a
WHERE EXISTS (SELECT 1 FROM comments c WHERE c.article_id = a.id AND c.score > 4)
  AND a.author_id = 7
;;
SELECT a.id, a.title
FROM articles a
WHERE NOT EXISTS (SELECT 1 FROM comments c WHERE c.article_id = a.id AND c.score > 4)
  AND a.author_id = 7
;;
SELECT a.id, a.title
FROM articles a
WHERE EXISTS (SELECT 1 FROM comments c WHERE c.article_id = a.id AND c.score > -2)
  AND a.author_id = 7
;;
SELECT a.id, a.title
FROM articles a
WHERE EXISTS (SELECT 1 FROM comments c WHERE c.article_id = a.id AND c.score > -4)
  AND a.author_id = 1
;;
SELECT id, username FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 500)
;;
SELECT id, username FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 1000)
;;
SELECT id, username FROM users WHERE id NOT IN (SELECT user_id FROM orders WHERE total > 1000)
;;
SELECT o.id, o.total, (SELECT count(*) FROM order_items oi WHERE oi.order_id = o.id) AS items
FROM orders o WHERE o.user_id = 4 ORDER BY o.created_at DESC LIMIT 5
;;
SELECT o.id, o.total, (SELECT count(*) FROM order_items oi WHERE oi.order_id = o.id) AS items
FROM orders o WHERE o.user_id = 24 ORDER BY o.created_at DESC LIMIT 50
;;
SELECT date_trunc('day', created_at) AS day, count(*), sum(total)
FROM orders
WHERE created_at >= '2024-03-01' AND created_at < '2024-04-01'
GROUP BY 1 ORDER BY 1
;;
SELECT date_trunc('week', created_at) AS day, count(*), sum(total)
FROM orders
WHERE created_at >= '2024-03-05' AND created_at < '2024-03-25'
GROUP BY 1 ORDER BY 1
;;
SELECT date_trunc('day', created_at) AS day, count(*), sum(total)
FROM orders
WHERE created_at >= '2024-03-01' AND created_at < '2024-04-01'
GROUP BY 1 ORDER BY 2 DESC
;;
SELECT status, count(*) FROM orders GROUP BY status ORDER BY 2 DESC
;;
SELECT status, count(*) FROM orders GROUP BY status ORDER BY 1
;;
SELECT status, currency, count(*) FROM orders GROUP BY 1, 2 ORDER BY 3 DESC
;;
SELECT id, username, email FROM users ORDER BY 2 LIMIT 5
;;
SELECT id, username, email FROM users ORDER BY 3 LIMIT 5
;;
SELECT id, username, email FROM users ORDER BY 3 LIMIT 50
;;
SELECT p.name, sum(oi.quantity) AS sold
FROM order_items oi JOIN products p ON p.id = oi.product_id
JOIN orders o ON o.id = oi.order_id
WHERE o.status IN ('paid', 'shipped') AND o.created_at BETWEEN '2024-03-01' AND '2024-03-31'
GROUP BY p.name ORDER BY sold DESC LIMIT 10
;;
SELECT p.name, sum(oi.quantity) AS sold
FROM order_items oi JOIN products p ON p.id = oi.product_id
JOIN orders o ON o.id = oi.order_id
WHERE o.status IN ('shipped', 'paid') AND o.created_at BETWEEN '2024-04-01' AND '2024-04-30'
GROUP BY p.name ORDER BY sold DESC LIMIT 20
;;
SELECT p.name, sum(oi.quantity) AS sold
FROM order_items oi JOIN products p ON p.id = oi.product_id
JOIN orders o ON o.id = oi.order_id
WHERE o.status IN ('paid') AND o.created_at BETWEEN '2024-03-01' AND '2024-03-31'
GROUP BY p.name ORDER BY sold DESC LIMIT 10
;;
SELECT u.username, a.title, c.body
FROM comments c
JOIN users u ON u.id = c.user_id
JOIN articles a ON a.id = c.article_id
WHERE c.created_at > now() - interval '2 hours' AND NOT c.is_spam
ORDER BY c.created_at DESC
;;
SELECT u.username, a.title, c.body
FROM comments c
JOIN users u ON u.id = c.user_id
JOIN articles a ON a.id = c.article_id
WHERE c.created_at > now() - interval '45 minutes' AND NOT c.is_spam
ORDER BY c.created_at DESC
;;
SELECT u.username, a.title, c.body
FROM comments c
JOIN users u ON u.id = c.user_id
RIGHT JOIN articles a ON a.id = c.article_id
WHERE c.created_at > now() - interval '45 minutes' AND NOT c.is_spam
ORDER BY c.created_at DESC
;;
SELECT u.username, a.title, c.body
FROM comments c
JOIN users u ON u.id = c.user_id
FULL OUTER JOIN articles a ON a.id = c.article_id
WHERE c.created_at > now() - interval '45 minutes'
ORDER BY c.created_at DESC
;;
SELECT t.name, count(*) FROM tags t JOIN article_tags at2 ON at2.tag_id = t.id GROUP BY t.name HAVING count(*) >= 10
;;
SELECT t.name, count(*) FROM tags t JOIN article_tags at2 ON at2.tag_id = t.id GROUP BY t.name HAVING count(*) >= 30
;;
SELECT id FROM articles WHERE published_at > '2024-01-05 00:00:00' UNION SELECT article_id FROM comments WHERE score > 4
;;
SELECT id FROM articles WHERE published_at > '2024-01-20 00:00:00' UNION SELECT article_id FROM comments WHERE score > 2
;;
SELECT id FROM articles WHERE published_at > '2024-01-20 00:00:00' UNION ALL SELECT article_id FROM comments WHERE score > 2
;;
SELECT id FROM articles WHERE published_at > '2024-01-20 00:00:00' EXCEPT SELECT article_id FROM comments WHERE score > 2
;;
SELECT DISTINCT ON (user_id) user_id, id, created_at FROM orders ORDER BY user_id, created_at DESC
;;
SELECT DISTINCT user_id FROM orders WHERE total > 300
;;
SELECT DISTINCT user_id FROM orders WHERE total > 900
;;
SELECT a.*, au.name AS author_name FROM articles a, authors au WHERE au.id = a.author_id AND a.id = 10
;;
SELECT a.*, au.name AS author_name FROM articles a, authors au WHERE au.id = a.author_id AND a.id = 11
;;
SELECT x.n, u.username FROM generate_series(1, 5) AS x(n) JOIN users u ON u.id = x.n
;;
SELECT x.n, u.username FROM generate_series(10, 20) AS x(n) JOIN users u ON u.id = x.n
;;
SELECT u.id, latest.id AS last_order FROM users u
CROSS JOIN LATERAL (SELECT id FROM orders o WHERE o.user_id = u.id ORDER BY created_at DESC LIMIT 1) latest
WHERE u.id < 10
;;
SELECT u.id, latest.id AS last_order FROM users u
CROSS JOIN LATERAL (SELECT id FROM orders o WHERE o.user_id = u.id ORDER BY created_at DESC LIMIT 3) latest
WHERE u.id < 30
;;
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders WHERE status = 'paid'
;;
SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY total) FROM orders WHERE status = 'shipped'
;;
SELECT count(*) FILTER (WHERE is_spam) AS spam, count(*) FILTER (WHERE score > 0) AS positive FROM comments WHERE article_id = 3
;;
SELECT count(*) FILTER (WHERE is_spam) AS spam, count(*) FILTER (WHERE score > 2) AS positive FROM comments WHERE article_id = 30
;;
SELECT CASE WHEN total > 1000 THEN 'large' WHEN total > 100 THEN 'medium' ELSE 'small' END AS size, count(*) FROM orders GROUP BY 1
;;
SELECT CASE WHEN total > 2000 THEN 'XL' WHEN total > 500 THEN 'L' ELSE 'S' END AS size, count(*) FROM orders GROUP BY 1
;;
SELECT coalesce(last_login, date_joined) AS seen FROM users WHERE id = 4
;;
SELECT coalesce(last_login, date_joined) AS seen FROM users WHERE id = 8
;;
SELECT greatest(view_count, 10), least(rating, 4.5) FROM articles WHERE id = 3
;;
SELECT greatest(view_count, 100), least(rating, 2.5) FROM articles WHERE id = 9
;;
SELECT id, title FROM articles WHERE title ILIKE '%number 1%' LIMIT 20
;;
SELECT id, title FROM articles WHERE title ILIKE '%NUMBER 9_%' LIMIT 20
;;
SELECT id, title FROM articles WHERE title ~* 'number [0-9]+$' LIMIT 20
;;
SELECT id, title FROM articles WHERE title ~* '^article' LIMIT 5
;;
SELECT id, title FROM articles WHERE to_tsvector('english', body) @@ plainto_tsquery('english', 'lorem ipsum') LIMIT 10
;;
SELECT id, title FROM articles WHERE to_tsvector('english', body) @@ plainto_tsquery('english', 'dolor') LIMIT 10
;;
SELECT id FROM orders WHERE (user_id, status) = (3, 'paid')
;;
SELECT id FROM orders WHERE (user_id, status) = (13, 'pending')
;;
SELECT id FROM orders WHERE user_id = 3 AND (status = 'paid' OR total > 50)
;;
SELECT id FROM orders WHERE user_id = 3 AND (status = 'paid' OR total > 50 OR notes IS NOT NULL)
;;
--# ---- jsonb, arrays, uuids, timestamps ------------------------------------------------------------
SELECT id, settings->>'theme' AS theme FROM users WHERE settings->>'theme' = 'dark'
;;
SELECT id, settings->>'theme' AS theme FROM users WHERE settings->>'theme' = 'light'
;;
SELECT id, settings->>'lang' AS theme FROM users WHERE settings->>'lang' = 'de'
;;
SELECT id FROM users WHERE settings #>> '{notifications,email}' = 'true'
;;
SELECT id FROM users WHERE settings #>> '{notifications,sms}' = 'false'
;;
SELECT id FROM users WHERE settings @> '{"lang": "en"}'
;;
SELECT id FROM users WHERE settings @> '{"lang": "en", "theme": "dark"}'
;;
SELECT id, metadata FROM articles WHERE metadata ? 'featured'
;;
SELECT id, metadata FROM articles WHERE metadata ? 'words'
;;
SELECT id, metadata FROM articles WHERE metadata ?| array['featured', 'pinned']
;;
SELECT id, metadata FROM articles WHERE metadata ?& array['featured', 'words']
;;
SELECT id, (metadata->>'words')::int AS words FROM articles WHERE (metadata->>'words')::int > 250 ORDER BY 2 DESC
;;
SELECT id, (metadata->>'words')::int AS words FROM articles WHERE (metadata->>'words')::int > 290 ORDER BY 2 DESC
;;
SELECT jsonb_build_object('id', id, 'name', username) FROM users WHERE id = 5
;;
SELECT jsonb_build_object('id', id, 'name', username) FROM users WHERE id = 6
;;
SELECT jsonb_agg(jsonb_build_object('sku', sku, 'price', price)) FROM products WHERE stock > 5
;;
SELECT jsonb_agg(jsonb_build_object('sku', sku, 'price', price)) FROM products WHERE stock > 15
;;
UPDATE users SET settings = settings || '{"theme": "dark"}'::jsonb WHERE id = 5
;;
UPDATE users SET settings = settings || '{"theme": "light", "lang": "fr"}'::jsonb WHERE id = 6
;;
UPDATE users SET settings = jsonb_set(settings, '{notifications,email}', 'false') WHERE id = 7
;;
UPDATE users SET settings = jsonb_set(settings, '{notifications,email}', 'true') WHERE id = 8
;;
UPDATE users SET settings = settings - 'theme' WHERE id = 9
;;
UPDATE users SET settings = settings - 'lang' WHERE id = 10
;;
SELECT id FROM users WHERE 'admin' = ANY (roles)
;;
SELECT id FROM users WHERE 'reader' = ANY (roles)
;;
SELECT id FROM users WHERE roles && ARRAY['admin', 'editor']
;;
SELECT id FROM users WHERE roles && ARRAY['admin', 'editor', 'owner']
;;
SELECT id FROM users WHERE roles && '{admin,editor}'::text[]
;;
SELECT id FROM users WHERE roles && '{owner}'::text[]
;;
UPDATE users SET roles = array_append(roles, 'editor') WHERE id = 11
;;
UPDATE users SET roles = array_append(roles, 'moderator') WHERE id = 12
;;
UPDATE users SET roles = array_remove(roles, 'reader') WHERE id = 12
;;
SELECT id, cardinality(roles), roles[1] FROM users WHERE id = 2
;;
SELECT id, cardinality(roles), roles[2] FROM users WHERE id = 3
;;
SELECT unnest(object_ids) FROM audit_log WHERE id = 5
;;
SELECT unnest(object_ids) FROM audit_log WHERE id = 50
;;
SELECT id FROM audit_log WHERE object_ids @> ARRAY[3]::bigint[]
;;
SELECT id FROM audit_log WHERE object_ids @> ARRAY[3, 4]::bigint[]
;;
SELECT * FROM users WHERE uuid = '00000000-0000-4000-8000-000000000007'
;;
SELECT * FROM users WHERE uuid = '00000000-0000-4000-8000-000000000042'::uuid
;;
SELECT * FROM users WHERE uuid = '00000000-0000-4000-8000-000000000043'::uuid
;;
SELECT * FROM orders WHERE public_id IN ('10000000-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000002')
;;
SELECT * FROM orders WHERE public_id IN ('10000000-0000-4000-8000-000000000003')
;;
SELECT id FROM orders WHERE created_at::date = DATE '2024-03-02'
;;
SELECT id FROM orders WHERE created_at::date = DATE '2024-03-09'
;;
SELECT id FROM orders WHERE created_at >= TIMESTAMP WITH TIME ZONE '2024-03-02 00:00:00+00' AND created_at < TIMESTAMP WITH TIME ZONE '2024-03-03 00:00:00+00'
;;
SELECT id FROM orders WHERE created_at >= TIMESTAMP WITH TIME ZONE '2024-03-10 00:00:00+00' AND created_at < TIMESTAMP WITH TIME ZONE '2024-03-11 00:00:00+00'
;;
SELECT id FROM articles WHERE published_at > TIMESTAMP '2024-01-10 12:00:00'
;;
SELECT id FROM articles WHERE published_at > TIMESTAMP '2024-01-20 00:00:00'
;;
SELECT id FROM articles WHERE published_at > now() - INTERVAL '1 year'
;;
SELECT id FROM articles WHERE published_at > now() - INTERVAL '3 months'
;;
SELECT session_key FROM sessions WHERE expire_date < now() + interval '1 hour' LIMIT 100
;;
SELECT extract(epoch FROM created_at)::bigint FROM orders WHERE id = 10
;;
SELECT extract(epoch FROM created_at)::bigint FROM orders WHERE id = 11
;;
SELECT to_char(created_at, 'YYYY-MM-DD') FROM orders WHERE id = 12
;;
SELECT to_char(created_at, 'HH24:MI') FROM orders WHERE id = 13
;;
SELECT id FROM orders WHERE created_at AT TIME ZONE 'Europe/Berlin' > '2024-03-05 10:00'
;;
SELECT id FROM orders WHERE created_at AT TIME ZONE 'America/New_York' > '2024-03-06 10:00'
;;
--# ---- literal syntaxes: E'' strings, dollar quoting, U&'', bit strings, casts -------------------
SELECT id FROM comments WHERE body = E'line one\nline two'
;;
SELECT id FROM comments WHERE body = E'it\'s \\ escaped\t'
;;
SELECT id FROM comments WHERE body = 'plain'
;;
SELECT id FROM comments WHERE body = $$it's dollar quoted; with a semicolon$$
;;
SELECT id FROM comments WHERE body = $body$has $$ inside and 'quotes'$body$
;;
SELECT id FROM comments WHERE body = U&'d\0061t\+000061'
;;
SELECT id FROM comments WHERE body LIKE 'Comment 1%' ESCAPE '!'
;;
SELECT id FROM comments WHERE body LIKE 'Comment 2!%%' ESCAPE '!'
;;
SELECT B'1010' | B'0101', X'1F'::bit(8)
;;
SELECT B'1111' | B'0000', X'FF'::bit(8)
;;
SELECT 1.5e3::float8 * view_count FROM articles WHERE id = 1
;;
SELECT 2.5e-3::float8 * view_count FROM articles WHERE id = 2
;;
SELECT id FROM products WHERE price::numeric(10, 2) > 10.00
;;
SELECT id FROM products WHERE price::numeric(10, 2) > 99.99
;;
SELECT CAST(price AS integer) FROM products WHERE id = 4
;;
SELECT CAST(price AS integer) FROM products WHERE id = 14
;;
SELECT id, 'x' || username || 'y' FROM users WHERE id = 1
;;
SELECT id, 'prefix-' || username || '-suffix' FROM users WHERE id = 2
;;
SELECT 'static string', 42, 3.14, true, NULL
;;
SELECT 'another string', 7, 2.72, false, NULL
;;
SELECT id FROM users WHERE is_active = true AND is_staff = false
;;
SELECT id FROM users WHERE is_active = false AND is_staff = true
;;
SELECT id FROM users WHERE is_active IS TRUE
;;
SELECT id FROM users WHERE last_login IS NULL
;;
SELECT id FROM users WHERE last_login IS NOT NULL
;;
SELECT id FROM users WHERE last_login = '2024-06-01 13:00:00+00'
;;
SELECT id FROM users WHERE last_login > '2024-06-01 13:00:00+00'
;;
SELECT id FROM users WHERE first_name IS DISTINCT FROM 'First1'
;;
SELECT id FROM users WHERE first_name IS DISTINCT FROM 'First2'
;;
SELECT id FROM users WHERE first_name IS NOT DISTINCT FROM 'First2'
;;
--# ---- DML: RETURNING, ON CONFLICT, multi-row VALUES, UPDATE ... FROM, DELETE ... USING ---------
INSERT INTO tags (name, slug) VALUES ('Rust', 'rust') RETURNING id
;;
INSERT INTO tags (name, slug) VALUES ('Go', 'go') RETURNING id
;;
INSERT INTO tags (name, slug) VALUES ('Zig', 'zig'), ('Nim', 'nim') RETURNING id
;;
INSERT INTO tags (name, slug) VALUES ('Zig', 'zig'), ('Nim', 'nim'), ('Odin', 'odin'), ('Hare', 'hare') RETURNING id
;;
INSERT INTO tags (name, slug) VALUES ('Ada', 'ada'), ('Lua', 'lua'), ('Elm', 'elm') RETURNING id
;;
INSERT INTO tags (name, slug) VALUES ('PostgreSQL', 'postgresql') ON CONFLICT (slug) DO NOTHING
;;
INSERT INTO tags (name, slug) VALUES ('Python', 'python') ON CONFLICT (slug) DO NOTHING
;;
INSERT INTO tags (name, slug) VALUES ('PostgreSQL 15', 'postgresql') ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name RETURNING id, name
;;
INSERT INTO tags (name, slug) VALUES ('Python 3', 'python') ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name RETURNING id, name
;;
INSERT INTO tags (name, slug) VALUES ('Python 3', 'python') ON CONFLICT ON CONSTRAINT tags_slug_key DO UPDATE SET name = EXCLUDED.name RETURNING id, name
;;
INSERT INTO sessions (session_key, user_id, session_data, expire_date)
VALUES ('c4ca4238a0b923820dcc509a6f75849b', 1, '{"cart": []}', '2025-02-01 00:00:00+00')
ON CONFLICT (session_key) DO UPDATE SET session_data = EXCLUDED.session_data, expire_date = EXCLUDED.expire_date
;;
INSERT INTO sessions (session_key, user_id, session_data, expire_date)
VALUES ('zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz', 2, '{"cart": [1, 2, 3]}', '2025-02-02 00:00:00+00')
ON CONFLICT (session_key) DO UPDATE SET session_data = EXCLUDED.session_data, expire_date = EXCLUDED.expire_date
;;
INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (1, 1, 2, 3.50)
ON CONFLICT (order_id, product_id) DO UPDATE SET quantity = order_items.quantity + EXCLUDED.quantity RETURNING id, quantity
;;
INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (1, 9, 1, 31.50)
ON CONFLICT (order_id, product_id) DO UPDATE SET quantity = order_items.quantity + EXCLUDED.quantity RETURNING id, quantity
;;
INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (2, 1, 1, 3.50), (2, 2, 4, 7.00)
ON CONFLICT (order_id, product_id) DO UPDATE SET quantity = order_items.quantity + EXCLUDED.quantity RETURNING id, quantity
;;
INSERT INTO orders (public_id, user_id, status, total, currency) VALUES ('20000000-0000-4000-8000-000000000001', 1, 'pending', 10.50, 'EUR') RETURNING id, created_at
;;
INSERT INTO orders (public_id, user_id, status, total, currency) VALUES ('20000000-0000-4000-8000-000000000002', 2, 'paid', 99.99, 'USD') RETURNING id, created_at
;;
INSERT INTO orders (public_id, user_id, status, total, currency) VALUES ('20000000-0000-4000-8000-000000000003', 3, 'pending', 0, 'GBP') RETURNING id, created_at
;;
INSERT INTO orders (public_id, user_id, total) VALUES (gen_random_uuid(), 4, 12.34) RETURNING *
;;
INSERT INTO orders (public_id, user_id, total) VALUES (gen_random_uuid(), 5, 56.78) RETURNING *
;;
INSERT INTO orders (public_id, user_id, total) SELECT gen_random_uuid(), id, 0 FROM users WHERE id BETWEEN 1 AND 3
;;
INSERT INTO orders (public_id, user_id, total) SELECT gen_random_uuid(), id, 0 FROM users WHERE id BETWEEN 10 AND 12
;;
INSERT INTO comments (article_id, user_id, body) VALUES (1, 1, 'a'), (1, 2, 'b')
;;
INSERT INTO comments (article_id, user_id, body) VALUES (1, 1, 'a'), (1, 2, 'b'), (1, 3, 'c')
;;
INSERT INTO comments (article_id, user_id, body) VALUES (2, 5, 'x'), (2, 6, 'y'), (2, 7, 'z'), (3, 8, 'w'), (3, 9, 'v')
;;
INSERT INTO comments (article_id, user_id, body) VALUES (4, 4, 'single')
;;
INSERT INTO comments (article_id, user_id, body, score) VALUES (4, 4, 'with score', -3)
;;
INSERT INTO comments (article_id, user_id, body, score) VALUES (5, 6, 'with score', -1)
;;
INSERT INTO comments (article_id, user_id, body, score) VALUES (5, 6, 'with score', 4)
;;
INSERT INTO comments (article_id, user_id, body, score, is_spam) VALUES (6, DEFAULT, 'defaults', DEFAULT, DEFAULT)
;;
INSERT INTO authors (name) VALUES ('Anonymous') RETURNING id
;;
INSERT INTO authors (name) VALUES ('Guest writer') RETURNING id
;;
INSERT INTO products (sku, name, price, attributes, tags) VALUES ('SKU-90001', 'Widget', 9.99, '{"color": "red"}', '{a,b}')
;;
INSERT INTO products (sku, name, price, attributes, tags) VALUES ('SKU-90002', 'Gadget', 19.99, '{"color": "blue", "size": "L"}', '{c}')
;;
UPDATE orders SET status = 'cancelled' WHERE id = 7 RETURNING id, status
;;
UPDATE orders SET status = 'refunded' WHERE id = 77 RETURNING id, status
;;
UPDATE orders SET status = 'shipped', notes = 'left at door' WHERE id = 77 AND status = 'paid' RETURNING id
;;
UPDATE orders SET status = 'shipped', notes = 'signed by neighbour' WHERE id = 78 AND status = 'pending' RETURNING id
;;
UPDATE orders SET notes = NULL WHERE id = 79
;;
UPDATE orders SET notes = 'call before delivery' WHERE id = 80
;;
UPDATE orders o SET total = s.sum
FROM (SELECT order_id, sum(quantity * unit_price) AS sum FROM order_items GROUP BY order_id) s
WHERE s.order_id = o.id AND o.id = 15
;;
UPDATE orders o SET total = s.sum
FROM (SELECT order_id, sum(quantity * unit_price) AS sum FROM order_items GROUP BY order_id) s
WHERE s.order_id = o.id AND o.id = 16
;;
UPDATE articles SET status = 'archived', updated_at = now() WHERE published_at < '2024-01-05' RETURNING id
;;
UPDATE articles SET status = 'archived', updated_at = now() WHERE published_at < '2024-01-10' RETURNING id
;;
UPDATE articles SET rating = rating * 0.9 WHERE id IN (1, 2, 3)
;;
UPDATE articles SET rating = rating * 0.5 WHERE id IN (4, 5, 6, 7, 8)
;;
UPDATE articles SET rating = rating * 0.5 WHERE id IN (40)
;;
UPDATE articles SET rating = NULL WHERE id = 40
;;
UPDATE products SET price = price * 1.10, stock = stock + 5 WHERE id = ANY(ARRAY[1, 2])
;;
UPDATE products SET price = price * 1.20, stock = stock + 10 WHERE id = ANY(ARRAY[3, 4, 5])
;;
DELETE FROM article_tags t USING articles a WHERE t.article_id = a.id AND a.status = 'draft' AND t.tag_id < 3
;;
DELETE FROM article_tags t USING articles a WHERE t.article_id = a.id AND a.status = 'published' AND t.tag_id < 2
;;
DELETE FROM audit_log WHERE at < now() - interval '90 days' RETURNING id
;;
DELETE FROM audit_log WHERE at < now() - interval '1 day' RETURNING id
;;
DELETE FROM article_tags WHERE article_id = 5 AND tag_id IN (1, 2)
;;
DELETE FROM article_tags WHERE article_id = 6 AND tag_id IN (3, 4, 5)
;;
DELETE FROM article_tags WHERE article_id = 7 AND tag_id NOT IN (8)
;;
DELETE FROM sessions WHERE user_id = 3 RETURNING session_key
;;
DELETE FROM sessions WHERE user_id = 30 RETURNING session_key
;;
WITH moved AS (
    DELETE FROM sessions WHERE expire_date < '2025-01-01 05:00:00+00' RETURNING *
)
INSERT INTO audit_log (action, payload) SELECT 'session_expired', to_jsonb(moved) FROM moved
;;
WITH moved AS (
    DELETE FROM sessions WHERE expire_date < '2025-01-02 05:00:00+00' RETURNING *
)
INSERT INTO audit_log (action, payload) SELECT 'session_purged', to_jsonb(moved) FROM moved
;;
WITH upd AS (
    UPDATE products SET stock = stock - 1 WHERE id = 3 AND stock > 0 RETURNING id, stock
)
SELECT * FROM upd
;;
WITH upd AS (
    UPDATE products SET stock = stock - 1 WHERE id = 30 AND stock > 0 RETURNING id, stock
)
SELECT * FROM upd
;;
--# ---- whitespace, keyword case, comments: the same queries written differently ---------------------
SELECT id, email FROM users WHERE username = 'user9' AND is_active
;;
select id, email from users where username = 'user19' and is_active
;;
SeLeCt id, email FrOm users WhErE username = 'user29' AnD is_active
;;
SELECT   id,email
FROM	users
WHERE username='user39'
  AND is_active
;;
SELECT id, email FROM users WHERE username = 'user49' AND is_active;
;;
-- find the user by name
SELECT id, email FROM users WHERE username = 'user8' AND is_active
;;
SELECT id, email /* the columns the login form needs */ FROM users WHERE username = 'user7' -- by name
  AND is_active
;;
SELECT id, email FROM users WHERE username = /* user input */ 'user6' AND /* nested /* comment */ here */ is_active
;;
SELECT ID, EMAIL FROM USERS WHERE USERNAME = 'USER5' AND IS_ACTIVE
;;
SELECT count(*) FROM articles WHERE status = 'published'
;;
SELECT COUNT(*) FROM articles WHERE status = 'draft'
;;
select count(*)
  from articles
 where status = 'archived'
;;
SELECT count( * ) FROM articles WHERE status='published'
;;
--# ---- transaction control, savepoints, SET -----------------------------------------------------------
BEGIN
;;
begin
;;
BEGIN;
;;
BEGIN TRANSACTION
;;
BEGIN ISOLATION LEVEL SERIALIZABLE
;;
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY
;;
START TRANSACTION
;;
START TRANSACTION ISOLATION LEVEL READ COMMITTED
;;
COMMIT
;;
commit
;;
COMMIT;
;;
END
;;
ROLLBACK
;;
rollback
;;
ABORT
;;
SAVEPOINT "s140245_x1"
;;
SAVEPOINT "s140245_x2"
;;
SAVEPOINT "s139871_x17"
;;
RELEASE SAVEPOINT "s140245_x1"
;;
RELEASE SAVEPOINT "s139871_x17"
;;
ROLLBACK TO SAVEPOINT "s140245_x2"
;;
ROLLBACK TO SAVEPOINT "s139871_x17"
;;
SAVEPOINT sa_savepoint_1
;;
SAVEPOINT sa_savepoint_2
;;
RELEASE SAVEPOINT sa_savepoint_1
;;
RELEASE SAVEPOINT sa_savepoint_2
;;
ROLLBACK TO SAVEPOINT sa_savepoint_2
;;
SAVEPOINT active_record_1
;;
SAVEPOINT active_record_2
;;
RELEASE SAVEPOINT active_record_1
;;
ROLLBACK TO SAVEPOINT active_record_1
;;
savepoint my_sp
;;
release my_sp
;;
rollback to my_sp
;;
SET statement_timeout = 5000
;;
SET statement_timeout = 30000
;;
SET statement_timeout = '5s'
;;
SET statement_timeout TO 1000
;;
SET LOCAL statement_timeout = 2000
;;
SET LOCAL statement_timeout = 100
;;
SET lock_timeout = '2s'
;;
SET lock_timeout = '500ms'
;;
SET search_path TO public
;;
SET search_path TO "$user", public
;;
SET TIME ZONE 'UTC'
;;
SET TIME ZONE 'Europe/Berlin'
;;
SET application_name = 'web-1'
;;
SET application_name = 'worker-7'
;;
SET SESSION work_mem = '64MB'
;;
SET SESSION work_mem = '4MB'
;;
SET LOCAL app.current_user_id = '42'
;;
SET LOCAL app.current_user_id = '7'
;;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE
;;
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ
;;
RESET statement_timeout
;;
RESET ALL
;;
SHOW timezone
;;
SHOW server_version
;;
SHOW TRANSACTION ISOLATION LEVEL
;;
--# ---- misc statements applications send ------------------------------------------------------------
SELECT 1
;;
SELECT 2
;;
select 1;
;;
SELECT version()
;;
SELECT current_database(), current_user
;;
SELECT now()
;;
SELECT nextval('orders_id_seq')
;;
SELECT nextval('users_id_seq')
;;
SELECT currval('orders_id_seq') FROM (SELECT nextval('orders_id_seq')) s
;;
SELECT pg_advisory_xact_lock(12345)
;;
SELECT pg_advisory_xact_lock(67890)
;;
SELECT pg_try_advisory_xact_lock(1, 2)
;;
SELECT pg_try_advisory_xact_lock(3, 4)
;;
SELECT t.typname, t.oid FROM pg_type t WHERE t.typname IN ('hstore', 'citext')
;;
SELECT t.typname, t.oid FROM pg_type t WHERE t.typname IN ('geometry', 'geography', 'raster')
;;
SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass AND attnum > 0 AND NOT attisdropped
;;
SELECT attname FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attnum > 0 AND NOT attisdropped
;;
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
;;
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
;;
VALUES (1, 'one'), (2, 'two')
;;
VALUES (1, 'one'), (2, 'two'), (3, 'three')
;;
TABLE tags
;;
SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(id, name) JOIN users u ON u.id = v.id
;;
SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')) AS v(id, name) JOIN users u ON u.id = v.id
;;
SELECT * FROM (VALUES (5, 'e')) AS v(id, name) JOIN users u ON u.id = v.id
;;
SELECT pg_sleep(0)
;;
SELECT id FROM users ORDER BY random() LIMIT 3
;;
SELECT id FROM users TABLESAMPLE SYSTEM (50) LIMIT 3
;;
SELECT id FROM users TABLESAMPLE SYSTEM (10) LIMIT 3
;;
SELECT id FROM users LIMIT ALL
;;
SELECT id FROM users OFFSET 10
;;
SELECT id FROM users OFFSET 20 ROWS FETCH FIRST 5 ROWS ONLY
;;
SELECT id FROM users OFFSET 40 ROWS FETCH FIRST 10 ROWS ONLY
;;
SELECT id FROM users FOR SHARE
;;
SELECT id FROM users WHERE id = 1 FOR UPDATE NOWAIT
;;
SELECT id FROM users WHERE id = 2 FOR UPDATE NOWAIT
;;
SELECT id FROM users WHERE id = 3 FOR NO KEY UPDATE
;;
EXPLAIN SELECT id FROM users WHERE id = 1
;;
EXPLAIN SELECT id FROM users WHERE id = 2
;;
--# ---- equivalences PostgreSQL sees only after parse analysis -----------------------------------
--@ pg-semantic quoted and unquoted names of the same columns
SELECT "tags"."id", "tags"."name" FROM "tags" WHERE "tags"."slug" = 'sql'
;;
--@ pg-semantic quoted and unquoted names of the same columns
SELECT tags.id, tags.name FROM tags WHERE tags.slug = 'rails'
;;
--@ pg-semantic qualified and unqualified names of the same columns
SELECT id, name FROM tags WHERE slug = 'c'
;;
--@ pg-semantic a table alias is not part of the query's shape
SELECT t.id, t.name FROM tags t WHERE t.slug = 'python'
;;
--@ pg-semantic three ways to write a date constant: all become one Const
SELECT id FROM articles WHERE published_at::date = '2024-01-02'::date
;;
--@ pg-semantic three ways to write a date constant: all become one Const
SELECT id FROM articles WHERE published_at::date = DATE '2024-01-03'
;;
--@ pg-semantic three ways to write a date constant: all become one Const
SELECT id FROM articles WHERE published_at::date = CAST('2024-01-04' AS date)
;;
--@ pg-semantic an IN list of one element is parsed as =
SELECT id FROM tags WHERE id IN (3)
;;
--@ pg-semantic an IN list of one element is parsed as =
SELECT id FROM tags WHERE id = 4
;;
--@ pg-semantic an ordinal in ORDER BY names the same column as its name
SELECT id, slug FROM tags ORDER BY 2
;;
--@ pg-semantic an ordinal in ORDER BY names the same column as its name
SELECT id, slug FROM tags ORDER BY slug
;;
--@ pg-semantic SELECT * expands to the column list
SELECT * FROM tags WHERE id = 1
;;
--@ pg-semantic SELECT * expands to the column list
SELECT id, name, slug FROM tags WHERE id = 2
;;
--@ pg-semantic column aliases are not part of the query's shape
SELECT id AS tag_id, name AS tag_name FROM tags WHERE id = 5 LIMIT 1
;;
--@ pg-semantic column aliases are not part of the query's shape
SELECT id, name FROM tags WHERE id = 6 LIMIT 1
;;
