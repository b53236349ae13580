CREATE TABLE roles (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO roles VALUES (1, 'admin'), (2, 'user');
