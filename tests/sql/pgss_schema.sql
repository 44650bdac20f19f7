-- tests/sql/pgss_schema.sql: the application schema that tests/sql/pgss_corpus.sql runs against
-- (test_pgss executes this file in one simple-protocol call, into a database of its own).
-- A blog-and-shop application: users, authors, articles, comments, tags, orders, sessions.
-- The seed rows are what the corpus's UPDATE/DELETE/INSERT statements rely on; every corpus
-- statement runs in a transaction that is rolled back, so this data never changes.

CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled', 'refunded');

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    uuid          uuid NOT NULL UNIQUE,
    email         text NOT NULL UNIQUE,
    username      varchar(64) NOT NULL UNIQUE,
    password_hash text NOT NULL DEFAULT '',
    first_name    varchar(100) NOT NULL DEFAULT '',
    last_name     varchar(100) NOT NULL DEFAULT '',
    is_active     boolean NOT NULL DEFAULT true,
    is_staff      boolean NOT NULL DEFAULT false,
    date_joined   timestamptz NOT NULL DEFAULT now(),
    last_login    timestamptz,
    roles         text[] NOT NULL DEFAULT '{}',
    settings      jsonb NOT NULL DEFAULT '{}',
    balance       numeric(12, 2) NOT NULL DEFAULT 0
);

CREATE TABLE authors (
    id         serial PRIMARY KEY,
    user_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    name       text NOT NULL,
    bio        text,
    website    text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE articles (
    id           bigserial PRIMARY KEY,
    author_id    integer NOT NULL REFERENCES authors (id),
    slug         text NOT NULL UNIQUE,
    title        text NOT NULL,
    body         text NOT NULL DEFAULT '',
    status       varchar(16) NOT NULL DEFAULT 'draft',
    published_at timestamp,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    view_count   integer NOT NULL DEFAULT 0,
    rating       double precision,
    metadata     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX articles_published_idx ON articles (published_at DESC);

CREATE TABLE comments (
    id         bigserial PRIMARY KEY,
    article_id bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    user_id    bigint REFERENCES users (id),
    parent_id  bigint REFERENCES comments (id),
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    is_spam    boolean NOT NULL DEFAULT false,
    score      smallint NOT NULL DEFAULT 0
);

CREATE TABLE tags (
    id   serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    slug text NOT NULL UNIQUE
);

CREATE TABLE article_tags (
    article_id bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    tag_id     integer NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (article_id, tag_id)
);

CREATE TABLE products (
    id         serial PRIMARY KEY,
    sku        text NOT NULL UNIQUE,
    name       text NOT NULL,
    price      numeric(10, 2) NOT NULL,
    stock      integer NOT NULL DEFAULT 0,
    attributes jsonb NOT NULL DEFAULT '{}',
    tags       text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    public_id   uuid NOT NULL UNIQUE,
    user_id     bigint NOT NULL REFERENCES users (id),
    status      order_status NOT NULL DEFAULT 'pending',
    total       numeric(12, 2) NOT NULL DEFAULT 0,
    currency    char(3) NOT NULL DEFAULT 'EUR',
    created_at  timestamptz NOT NULL DEFAULT now(),
    paid_at     timestamptz,
    shipping    jsonb,
    notes       text
);
CREATE INDEX orders_user_created_idx ON orders (user_id, created_at);

CREATE TABLE order_items (
    id         bigserial PRIMARY KEY,
    order_id   bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id integer NOT NULL REFERENCES products (id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    unit_price numeric(10, 2) NOT NULL,
    UNIQUE (order_id, product_id)
);

CREATE TABLE sessions (
    session_key  varchar(40) PRIMARY KEY,
    user_id      bigint REFERENCES users (id) ON DELETE CASCADE,
    session_data jsonb NOT NULL DEFAULT '{}',
    ip           inet,
    user_agent   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expire_date  timestamptz NOT NULL
);
CREATE INDEX sessions_expire_idx ON sessions (expire_date);

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor_id   bigint,
    action     text NOT NULL,
    object_ids bigint[] NOT NULL DEFAULT '{}',
    payload    jsonb
);

-- ---- seed data ------------------------------------------------------------------------------
INSERT INTO users (id, uuid, email, username, first_name, last_name, is_staff, date_joined,
                   last_login, roles, settings, balance)
SELECT i,
       ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
       'user' || i || '@example.com',
       'user' || i,
       'First' || i,
       'Last' || i,
       i <= 3,
       timestamptz '2023-01-01 00:00:00+00' + i * interval '1 day',
       CASE WHEN i % 4 = 0 THEN NULL ELSE timestamptz '2024-06-01 12:00:00+00' + i * interval '1 hour' END,
       CASE WHEN i <= 3 THEN ARRAY['admin', 'editor'] ELSE ARRAY['reader'] END,
       jsonb_build_object('theme', CASE WHEN i % 2 = 0 THEN 'dark' ELSE 'light' END,
                          'lang', 'en', 'notifications', jsonb_build_object('email', i % 3 = 0)),
       (i * 7.25)::numeric(12, 2)
FROM generate_series(1, 50) AS i;
SELECT setval('users_id_seq', 50);

INSERT INTO authors (id, user_id, name, bio, website)
SELECT i, i, 'Author ' || i, CASE WHEN i % 2 = 0 THEN 'Writes about databases.' END,
       'https://example.com/~author' || i
FROM generate_series(1, 10) AS i;
SELECT setval('authors_id_seq', 10);

INSERT INTO articles (id, author_id, slug, title, body, status, published_at, view_count, rating, metadata)
SELECT i, 1 + (i % 10), 'article-' || i, 'Article number ' || i, repeat('Lorem ipsum. ', 20),
       CASE WHEN i % 5 = 0 THEN 'draft' ELSE 'published' END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE timestamp '2024-01-01 08:00:00' + i * interval '6 hours' END,
       i * 13, (i % 5) + 0.5,
       jsonb_build_object('words', 200 + i, 'featured', i % 7 = 0, 'lang', 'en')
FROM generate_series(1, 100) AS i;
SELECT setval('articles_id_seq', 100);

INSERT INTO comments (id, article_id, user_id, parent_id, body, is_spam, score)
SELECT i, 1 + (i % 100), 1 + (i % 50), CASE WHEN i > 10 AND i % 3 = 0 THEN i - 10 END,
       'Comment ' || i, i % 17 = 0, (i % 11) - 5
FROM generate_series(1, 300) AS i;
SELECT setval('comments_id_seq', 300);

INSERT INTO tags (id, name, slug)
VALUES (1, 'PostgreSQL', 'postgresql'), (2, 'Python', 'python'), (3, 'Django', 'django'),
       (4, 'Performance', 'performance'), (5, 'C', 'c'), (6, 'Rails', 'rails'),
       (7, 'SQL', 'sql'), (8, 'Tutorial', 'tutorial');
SELECT setval('tags_id_seq', 8);

INSERT INTO article_tags (article_id, tag_id)
SELECT a, 1 + (a % 8) FROM generate_series(1, 100) AS a
UNION
SELECT a, 1 + ((a * 3) % 8) FROM generate_series(1, 100) AS a;

INSERT INTO products (id, sku, name, price, stock, attributes, tags)
SELECT i, 'SKU-' || lpad(i::text, 5, '0'), 'Product ' || i, (i * 3.5)::numeric(10, 2), i % 20,
       jsonb_build_object('color', (ARRAY['red', 'green', 'blue'])[1 + i % 3], 'weight', i * 10),
       ARRAY['tag' || (i % 4), 'tag' || (i % 5)]
FROM generate_series(1, 40) AS i;
SELECT setval('products_id_seq', 40);

INSERT INTO orders (id, public_id, user_id, status, total, created_at, paid_at, shipping)
SELECT i, ('10000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 1 + (i % 50),
       (ARRAY['pending', 'paid', 'shipped', 'cancelled']::order_status[])[1 + i % 4],
       (i * 11.5)::numeric(12, 2),
       timestamptz '2024-03-01 00:00:00+00' + i * interval '3 hours',
       CASE WHEN i % 4 IN (1, 2) THEN timestamptz '2024-03-01 01:00:00+00' + i * interval '3 hours' END,
       jsonb_build_object('city', 'Berlin', 'zip', lpad((10000 + i)::text, 5, '0'))
FROM generate_series(1, 200) AS i;
SELECT setval('orders_id_seq', 200);

INSERT INTO order_items (order_id, product_id, quantity, unit_price)
SELECT o, 1 + ((o + k * 7) % 40), k, (1 + ((o + k * 7) % 40)) * 3.5
FROM generate_series(1, 200) AS o, generate_series(1, 3) AS k;

INSERT INTO sessions (session_key, user_id, session_data, ip, user_agent, expire_date)
SELECT md5(i::text), 1 + (i % 50), jsonb_build_object('cart', jsonb_build_array(i, i + 1)),
       ('10.0.' || (i / 256) || '.' || (i % 256))::inet, 'Mozilla/5.0 (X11; Linux x86_64)',
       timestamptz '2025-01-01 00:00:00+00' + i * interval '1 hour'
FROM generate_series(1, 60) AS i;

INSERT INTO audit_log (actor_id, action, object_ids, payload)
SELECT 1 + (i % 5), (ARRAY['login', 'logout', 'update', 'delete'])[1 + i % 4], ARRAY[i, i + 1],
       jsonb_build_object('n', i)
FROM generate_series(1, 100) AS i;

ANALYZE;
